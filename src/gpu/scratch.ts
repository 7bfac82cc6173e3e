import { createEmptyBuffer } from './buffers';

/**
 * Buffers that recorded dispatches use only while they run (a planner's intermediate scores),
 * shared by the ops of one submit: the dispatches of a pass run in order, so an op may overwrite
 * what the op before it no longer reads. One buffer per role and size, all freed once the submit is
 * done. A fresh 10-20 MB buffer per layer was 40% of the CPU time of a Vertical-Slash prefill step
 * in the model (H100 machine, 4K tokens).
 */
export class StepScratch {
  private readonly buffers = new Map<string, GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  get(role: string, bytes: number): GPUBuffer {
    const key = `${role}|${bytes}`;
    let buffer = this.buffers.get(key);
    if (!buffer) {
      buffer = createEmptyBuffer(this.device, bytes, role);
      this.buffers.set(key, buffer);
    }
    return buffer;
  }

  destroy(): void {
    this.buffers.forEach((buffer) => buffer.destroy());
    this.buffers.clear();
  }
}

/**
 * Where a recorder gets its intermediate buffers: from the step's scratch when there is one, else
 * made for it and pushed to `owned` (the caller destroys them).
 */
export function scratchBuffers(
  device: GPUDevice,
  scratch: StepScratch | undefined,
  owned: GPUBuffer[],
): (role: string, bytes: number) => GPUBuffer {
  if (scratch) return (role, bytes) => scratch.get(role, bytes);
  return (role, bytes) => {
    const buffer = createEmptyBuffer(device, bytes, role);
    owned.push(buffer);
    return buffer;
  };
}
