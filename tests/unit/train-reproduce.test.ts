/**
 * tools/train/stages.json, the stages reproduce_default_model.sh trains the embedded model with,
 * checked against the training logs shipped beside the model: a stage added to the model without
 * its entry, or an entry whose steps or flags drift from what the stage ran, would reproduce
 * another model than the shipped one, and only a GPU hour later would anyone notice.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

interface Stage {
  stage: number;
  recipe: string;
  env: Record<string, string>;
  without_tasks?: string[];
  args: string[];
}

interface TrainingLog {
  steps: number;
  train_seconds: number;
  lr: number;
  seed: number;
  warmup_alone?: number;
  warmup_floor?: number;
  lookup_weight?: number;
  copy_chars?: number;
  relookup_head?: string;
  log: { step: number; lr: number }[];
}

const root = join(__dirname, '../..');
const model = join(root, 'public/models/tiny-tasks-4k');
const script = join(root, 'tools/train/reproduce_default_model.sh');
const { stages } = JSON.parse(readFileSync(join(root, 'tools/train/stages.json'), 'utf8')) as {
  stages: Stage[];
};
const loggedStages = readdirSync(model)
  .map((file) => /^training_log_stage(\d+)\.json$/.exec(file))
  .filter((match) => match !== null)
  .map((match) => Number(match[1]))
  .sort((a, b) => a - b);
const trainingLog = (stage: number) =>
  JSON.parse(readFileSync(join(model, `training_log_stage${stage}.json`), 'utf8')) as TrainingLog;

/** The value of a train.py option in a stage's arguments, or undefined where it is not given. */
function option(stage: Stage, name: string): string | undefined {
  const at = stage.args.indexOf(name);
  return at < 0 ? undefined : stage.args[at + 1];
}

const git = (...args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
// The recipe commits are read from git history, which a shallow clone lacks.
const shallowClone = git('rev-parse', '--is-shallow-repository').stdout.trim() === 'true';
const folder = mkdtempSync(join(tmpdir(), 'reproduce-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('tools/train/stages.json against the shipped training logs', () => {
  it('chains the stages whose logs ship with the model, in order, ending at the highest', () => {
    expect(stages.map((s) => s.stage)).toEqual(loggedStages);
    expect(stages[stages.length - 1].stage).toBe(Math.max(...loggedStages));
  });

  it('replays each stage for the steps it logged, with its learning rate, warm-up and seed', () => {
    for (const stage of stages) {
      const log = trainingLog(stage.stage);
      const replayed = Number(option(stage, '--stop-step') ?? option(stage, '--steps'));
      expect(replayed, `stage ${stage.stage} steps`).toBe(log.steps);
      const lr = Number(option(stage, '--lr'));
      expect(lr, `stage ${stage.stage} --lr`).toBe(log.lr);
      // The first step's learning rate is lr / warmup (train.py's default warm-up is 150 steps).
      const warmup = Number(option(stage, '--warmup') ?? 150);
      expect(log.log[0].step).toBe(0);
      expect(log.log[0].lr, `stage ${stage.stage} --warmup`).toBeCloseTo(lr / warmup, 12);
      expect(Number(option(stage, '--seed') ?? 0), `stage ${stage.stage} --seed`).toBe(log.seed);
    }
  });

  it('names every warm-up and supervised-attention option that a log records, with its value', () => {
    const logged = [
      ['--warmup-alone', 'warmup_alone'],
      ['--warmup-floor', 'warmup_floor'],
      ['--lookup-weight', 'lookup_weight'],
      ['--copy-chars', 'copy_chars'],
    ] as const;
    for (const stage of stages) {
      const log = trainingLog(stage.stage);
      for (const [flag, key] of logged) {
        if (log[key] === undefined) continue;
        expect(Number(option(stage, flag)), `stage ${stage.stage} ${flag}`).toBe(log[key]);
      }
      // An empty head (train.py's default) supervises none; the option is then left out.
      if (log.relookup_head !== undefined)
        expect(option(stage, '--relookup-head') ?? '', `stage ${stage.stage} --relookup-head`).toBe(
          log.relookup_head,
        );
    }
  });

  it('gives every stage a clock that never stops it before its steps', () => {
    for (const stage of stages) {
      const minutes = Number(option(stage, '--minutes'));
      expect(minutes * 60, `stage ${stage.stage} --minutes`).toBeGreaterThanOrEqual(
        10 * trainingLog(stage.stage).train_seconds,
      );
    }
  });

  it('draws fresh training data in every stage (distinct data seeds)', () => {
    const seeds = stages.map((s) => s.env.TRAIN_DATA_SEED);
    expect(seeds.every((seed) => /^\d+$/.test(seed))).toBe(true);
    expect(new Set(seeds).size).toBe(seeds.length);
  });

  it.skipIf(shallowClone)(
    "names recipe commits of this repository's history whose train.py takes every option",
    () => {
      for (const recipe of new Set(stages.map((s) => s.recipe))) {
        expect(git('cat-file', '-e', `${recipe}^{commit}`).status, recipe).toBe(0);
        const trainPy = git('show', `${recipe}:tools/train/train.py`).stdout;
        const options = stages
          .filter((s) => s.recipe === recipe)
          .flatMap((s) => s.args.filter((arg) => arg.startsWith('--')));
        for (const name of new Set(options)) {
          expect(trainPy, `${recipe} ${name}`).toContain(`"${name}"`);
        }
      }
    },
  );

  it.skipIf(shallowClone)(
    "leaves out only tasks that the recipe's script generates, one line each",
    () => {
      for (const stage of stages.filter((s) => s.without_tasks)) {
        const script = git('show', `${stage.recipe}:tools/train/train_default_model.sh`).stdout;
        for (const task of stage.without_tasks ?? []) {
          const lines = script.split('\n').filter((line) => line.startsWith(`generate ${task} `));
          expect(lines, `stage ${stage.stage} ${task}`).toHaveLength(1);
        }
      }
    },
  );
});

describe('reproduce_default_model.sh --dry-run', () => {
  const out = join(folder, 'out');
  const run = spawnSync('bash', [script, '--dry-run', out], { encoding: 'utf8' });
  const trainLines = run.stdout.split('\n').filter((line) => line.startsWith('env TRAIN_WORK='));

  it('prints the commands and writes nothing', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(out)).toBe(false);
  });

  it("prints one train command per stage, with the stage's recipe, data seed, init and options", () => {
    expect(trainLines).toHaveLength(stages.length);
    stages.forEach((stage, i) => {
      const line = trainLines[i];
      for (const [name, value] of Object.entries(stage.env))
        expect(line).toContain(` ${name}=${value} `);
      const script = stage.without_tasks
        ? `train_default_model.stage${stage.stage}.sh`
        : 'train_default_model.sh';
      expect(line).toContain(` ${out}/recipes/${stage.recipe}/${script} `);
      const init = i === 0 ? '' : `--init ${out}/stages/stage${stages[i - 1].stage}/model `;
      expect(
        line.endsWith(`${out}/stages/stage${stage.stage}.partial ${init}${stage.args.join(' ')}`),
      ).toBe(true);
    });
  });
});
