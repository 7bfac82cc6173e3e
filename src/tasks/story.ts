/** The templated story behind the three story tasks: one location, character and purchase per chapter. */

import {
  ARRIVAL,
  ATMOSPHERE,
  BUY,
  CHARACTERS,
  CONCLUSION,
  ENCOUNTER,
  EVENT,
  EVENTS,
  FAREWELL,
  ITEM_ADJECTIVES,
  ITEM_KINDS,
  ITEM_MATERIALS,
  LOCATIONS,
  PROTAGONIST,
  REASON,
  SELL,
  TALK,
} from './data/story';
import { largestFitting, largestFittingUnbounded, tooSmall } from './fill';
import { promptTokens, type PromptParts } from './prompt';
import { Rng, rngFor } from './random';
import type { GenerateOptions } from './types';

export const STORY_INTRO =
  'You are given a story told in numbered chapters. In each chapter the protagonist travels to a location, meets a character and trades items. Every item in the story is unique, and items can change owners through trades. Read the story carefully and answer the questions from the information it gives.';

const TALK_SENTENCES = 2;
/** Atmosphere sentences a chapter can take when the story is padded to its target length. */
const MAX_ATMOSPHERE = 6;
const MAX_CHAPTERS = 2000;

export interface Chapter {
  id: number;
  location: string;
  character: string;
  event: string;
  /** The item bought in this chapter. */
  item: string;
  /** The chapter whose item is sold in this one, or null when nothing is sold. */
  soldFrom: number | null;
  opening: string[];
  buy: string;
  sell: string | null;
  closing: string[];
  atmosphere: string[];
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`);
}

function withArticle(item: string): string {
  return `${/^[aeiou]/.test(item) ? 'an' : 'a'} ${item}`;
}

export class Story {
  private readonly rng: Rng;
  private readonly chapters: Chapter[] = [];
  private readonly pairs = new Set<string>();
  private readonly items = new Set<string>();
  /** Chapters whose item the protagonist still holds. */
  private readonly inventory: number[] = [];

  constructor(seed: number, stream: string) {
    this.rng = rngFor(seed, stream);
  }

  /** Chapter id (1-based); chapters are generated in order, on demand. */
  chapter(id: number): Chapter {
    while (this.chapters.length < id)
      this.chapters.push(this.nextChapter(this.chapters.length + 1));
    return this.chapters[id - 1];
  }

  /**
   * Chapters 1..n as text, with `atmosphere` padding sentences spread over them, and no purchase
   * (nor later sale of what it bought) in the chapters of `noPurchase`.
   */
  render(n: number, atmosphere: number, noPurchase: ReadonlySet<number>): string {
    const out: string[] = [];
    for (let id = 1; id <= n; id++) {
      const ch = this.chapter(id);
      const pad = Math.floor(atmosphere / n) + (id - 1 < atmosphere % n ? 1 : 0);
      const sentences = [
        ...ch.opening,
        ...(noPurchase.has(id) ? [] : [ch.buy]),
        ...(ch.sell !== null && ch.soldFrom !== null && !noPurchase.has(ch.soldFrom)
          ? [ch.sell]
          : []),
        ...ch.closing,
        ...ch.atmosphere.slice(0, Math.min(MAX_ATMOSPHERE, pad)),
      ];
      out.push(`Chapter ${id}:\n${sentences.join(' ')}`);
    }
    return out.join('\n\n');
  }

  private nextChapter(id: number): Chapter {
    const rng = this.rng;
    let location = rng.pick(LOCATIONS);
    let character = rng.pick(CHARACTERS);
    for (let tries = 0; this.pairs.has(`${location}|${character}`); tries++) {
      if (tries > 100) throw new Error('story: ran out of location-character pairs');
      location = rng.pick(LOCATIONS);
      character = rng.pick(CHARACTERS);
    }
    this.pairs.add(`${location}|${character}`);
    let item = '';
    for (let tries = 0; item === '' || this.items.has(item); tries++) {
      if (tries > 1000) throw new Error('story: ran out of unique items');
      item = `${rng.pick(ITEM_ADJECTIVES)} ${rng.pick(ITEM_MATERIALS)} ${rng.pick(ITEM_KINDS)}`;
    }
    this.items.add(item);
    const event = rng.pick(EVENTS);
    const vars = { hero: PROTAGONIST, place: location, who: character, event };
    const opening = [
      fill(rng.pick(ARRIVAL), vars),
      fill(rng.pick(REASON), vars),
      fill(rng.pick(EVENT), vars),
      fill(rng.pick(ENCOUNTER), vars),
      ...rng.sample(TALK, TALK_SENTENCES).map((t) => fill(t, vars)),
    ];
    const buy = fill(rng.pick(BUY), { ...vars, item: withArticle(item) });
    let soldFrom: number | null = null;
    let sell: string | null = null;
    if (this.inventory.length > 0 && rng.next() < 0.5) {
      soldFrom = this.inventory.splice(rng.int(this.inventory.length), 1)[0];
      sell = fill(rng.pick(SELL), { ...vars, sold: `the ${this.chapter(soldFrom).item}` });
    }
    this.inventory.push(id);
    const closing = [fill(rng.pick(FAREWELL), vars), fill(rng.pick(CONCLUSION), vars)];
    const atmosphere = rng.sample(ATMOSPHERE, MAX_ATMOSPHERE);
    return {
      id,
      location,
      character,
      event,
      item,
      soldFrom,
      opening,
      buy,
      sell,
      closing,
      atmosphere,
    };
  }
}

/** What a story task decides once it knows how many chapters fit. */
export interface Settled {
  build(story: string): PromptParts;
  noPurchase: ReadonlySet<number>;
}

/**
 * Fits a story to the target: the most chapters that fit with the draft prompt, then the task's
 * questions for that many chapters (settle), then as many atmosphere sentences as still fit.
 */
export function fitStory<S extends Settled>(args: {
  task: string;
  story: Story;
  opts: GenerateOptions;
  minChapters: number;
  draft(chapters: number, story: string): PromptParts;
  settle(chapters: number): S;
}): { chapters: number; atmosphere: number; settled: S; parts: PromptParts } {
  const { story, opts } = args;
  const none = new Set<number>();
  const fits = (p: PromptParts) => promptTokens(p, opts) <= opts.targetTokens;
  let n = largestFittingUnbounded(args.minChapters, MAX_CHAPTERS, (k) =>
    fits(args.draft(k, story.render(k, 0, none))),
  );
  for (; n >= args.minChapters; n--) {
    const settled = args.settle(n);
    const chapters = n;
    const atmosphere = largestFitting(0, MAX_ATMOSPHERE * n, (m) =>
      fits(settled.build(story.render(chapters, m, settled.noPurchase))),
    );
    if (atmosphere >= 0) {
      const parts = settled.build(story.render(n, atmosphere, settled.noPurchase));
      return { chapters: n, atmosphere, settled, parts };
    }
  }
  throw tooSmall(args.task, opts.targetTokens, `${args.minChapters} chapters`);
}
