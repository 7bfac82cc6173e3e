/**
 * The whole configuration in the URL hash (#config=<base64url JSON>), so a link reproduces the
 * controls. Decoding validates every field against the registries; a link never runs anything by
 * itself: the store restores controls and waits for the user's click (see playgroundStore.ts).
 */
import type { SweepConfig } from '../engine/sweepTypes';
import { getMethod } from '../methods/registry';
import { MAX_SPARSITY, resolveParams, type MethodName, type MethodParams } from '../methods/types';
import { PREVIEW_METHODS } from '../engine/maskPreview';
import { checkRunConfig, checkSweepConfig, type RunConfig } from './runConfig';

/** The patterns panel's part of a link. */
export interface SharedPattern {
  method: MethodName;
  seqLen: number;
  sparsity: number;
  /** The params of the method shown (including a mask_mod source). */
  params: MethodParams;
  /** The pattern editor's mask_mod, whichever method is shown (the run panel runs it too). */
  userSource: string;
}

export interface SharedState {
  /** Format version, so an old link can be told apart from a broken one. */
  v: 1;
  /** The model the link was made with (a name or repo id), shown to the user, never loaded. */
  model: string | null;
  run: RunConfig;
  sweep: SweepConfig;
  pattern: SharedPattern;
}

const HASH_KEY = 'config';
const MAX_SOURCE_LENGTH = 100_000;

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** The hash fragment (with '#') that carries a state. */
export function encodeShareHash(state: SharedState): string {
  return `#${HASH_KEY}=${toBase64Url(JSON.stringify(state))}`;
}

function checkPattern(value: unknown): SharedPattern {
  if (typeof value !== 'object' || value === null) throw new Error('pattern: expected an object');
  const p = value as Record<string, unknown>;
  if (!PREVIEW_METHODS.includes(p.method as MethodName)) {
    throw new Error(
      `pattern.method: ${JSON.stringify(p.method)} has no preview (known: ${PREVIEW_METHODS.join(', ')})`,
    );
  }
  const method = p.method as MethodName;
  if (typeof p.seqLen !== 'number' || !Number.isInteger(p.seqLen) || p.seqLen < 16) {
    throw new Error(`pattern.seqLen: expected a whole number of tokens, got ${String(p.seqLen)}`);
  }
  if (typeof p.sparsity !== 'number' || !(p.sparsity >= 0 && p.sparsity <= MAX_SPARSITY)) {
    throw new Error(`pattern.sparsity: expected 0 to ${MAX_SPARSITY}, got ${String(p.sparsity)}`);
  }
  const given = typeof p.params === 'object' && p.params !== null ? p.params : {};
  let params: MethodParams;
  try {
    params = resolveParams(getMethod(method).params, given as Partial<MethodParams>);
  } catch (error) {
    throw new Error(`pattern.params: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  if (typeof p.userSource !== 'string' || p.userSource.length > MAX_SOURCE_LENGTH) {
    throw new Error('pattern.userSource: expected mask_mod source text');
  }
  return { method, seqLen: p.seqLen, sparsity: p.sparsity, params, userSource: p.userSource };
}

/**
 * The state a hash carries: null when it carries none; throws (saying which field and why) when
 * it carries one that cannot be used.
 */
export function decodeShareHash(hash: string): SharedState | null {
  const fragment = hash.startsWith('#') ? hash.slice(1) : hash;
  const encoded = new URLSearchParams(fragment).get(HASH_KEY);
  if (encoded === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fromBase64Url(encoded));
  } catch {
    throw new Error('the link is damaged (its configuration is not readable); copy it again');
  }
  if (typeof raw !== 'object' || raw === null) throw new Error('the link holds no configuration');
  const state = raw as Record<string, unknown>;
  if (state.v !== 1) {
    throw new Error(`the link has configuration version ${String(state.v)}; this page reads 1`);
  }
  const model = state.model;
  if (model !== null && typeof model !== 'string') throw new Error('model: expected a name');
  return {
    v: 1,
    model,
    run: checkRunConfig(state.run),
    sweep: checkSweepConfig(state.sweep),
    pattern: checkPattern(state.pattern),
  };
}
