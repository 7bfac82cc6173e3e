import { cweTask } from './cwe';
import { niahTask } from './niah';
import { storyFilteringTask } from './storyFiltering';
import { storyMultihopTask } from './storyMultihop';
import { storyRetrievalTask } from './storyRetrieval';
import type { TaskDefinition } from './types';
import { vtTask } from './vt';

/** The study's six tasks, in the paper's order. */
export const TASKS: readonly TaskDefinition[] = [
  niahTask,
  vtTask,
  cweTask,
  storyRetrievalTask,
  storyMultihopTask,
  storyFilteringTask,
];

export function getTask(name: string): TaskDefinition {
  const task = TASKS.find((t) => t.name === name);
  if (!task)
    throw new Error(`unknown task "${name}" (known: ${TASKS.map((t) => t.name).join(', ')})`);
  return task;
}

export type { TaskDefinition, TaskSample, TokenCounter } from './types';
