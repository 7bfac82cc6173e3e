import type { GpuContext } from '../../src/gpu/context';
import { acquireNodeGpuContext } from '../../src/gpu/node';

let shared: Promise<GpuContext> | undefined;

/**
 * One GPU context for every kernel test file that a worker process runs (the kernels project runs
 * without isolation). On SwiftShader a pipeline compiles in 0.1-17 s and its execution in a test
 * takes milliseconds; sharing the context's pipeline cache compiles each (shader, defines) pair once
 * per worker rather than once per file. Files never destroy it: the next file in the worker uses it.
 * A lost device is forgotten, so that one file's lost device does not fail the files after it.
 */
export function sharedGpuContext(): Promise<GpuContext> {
  shared ??= acquireNodeGpuContext().then((ctx) => {
    void ctx.device.lost.then(() => (shared = undefined));
    return ctx;
  });
  return shared;
}
