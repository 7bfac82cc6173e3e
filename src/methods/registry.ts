import { adaSnapKVMethod } from './adaSnapKV';
import { blasstMethod } from './blasst';
import { blockSparseMethod } from './blockSparse';
import { denseMethod } from './dense';
import { flexPrefillMethod } from './flexPrefill';
import { questMethod } from './quest';
import { slidingWindowMethod } from './slidingWindow';
import { snapKVMethod } from './snapKV';
import type { Phase, SparseMethod } from './types';
import { userPatternMethod } from './userPattern';
import { verticalSlashMethod } from './verticalSlash';

/**
 * Every sparse attention method, in a fixed order (dense first, then prefill methods, decode
 * methods, user patterns). The UI, the CLI, the evaluation engine and the generic tests read this
 * list; adding a method is one module in src/methods/ and one line here.
 */
export const METHODS: readonly SparseMethod[] = [
  denseMethod,
  verticalSlashMethod,
  flexPrefillMethod,
  blockSparseMethod,
  blasstMethod,
  slidingWindowMethod,
  questMethod,
  snapKVMethod,
  adaSnapKVMethod,
  userPatternMethod,
];

export function getMethod(name: string): SparseMethod {
  const method = METHODS.find((m) => m.name === name);
  if (!method) {
    throw new Error(
      `unknown sparse attention method "${name}" (known: ${METHODS.map((m) => m.name).join(', ')})`,
    );
  }
  return method;
}

/** The methods that apply to a phase, in registry order. */
export function methodsFor(phase: Phase): SparseMethod[] {
  return METHODS.filter((m) => m.phases.includes(phase));
}

export type * from './types';
