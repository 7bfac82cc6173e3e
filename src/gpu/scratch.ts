import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  uniformWords,
} from './buffers';

/**
 * Buffers that recorded dispatches use only while they run (a planner's intermediate scores,
 * decode partials), their small inputs (uniforms, a decode's token gaps) and the bind groups over
 * them, shared by the ops of one submit and kept from step to step (a model owns one):
 *
 * - The dispatches of a pass run in order, so an op may overwrite what the op before it no longer
 *   reads: one buffer per role. A buffer kept from an earlier step is cleared when the step begins
 *   (`recordClears`), so every step starts from zeros as a fresh buffer would.
 * - Inputs are written into kept buffers, one per role and distinct content in a step.
 * - A bind group over the same pipeline and buffers is made once: with kept buffers a decode step
 *   records the bind groups of the step before it.
 *
 * What a step did not use is freed when it ends: a prefill's planner buffers (up to 64 MB) do not
 * outlive the prefill.
 *
 * A fresh 10-20 MB buffer per layer was 40% of the CPU time of a Vertical-Slash prefill step in the
 * model (H100 machine, 4K tokens); making each decode token's buffers and bind groups anew was 5 of
 * a Quest token's 7.6 ms of CPU time (H100 machine, 8K tokens, 30 layers).
 */
export class StepScratch {
  private readonly buffers = new Map<string, GPUBuffer>();
  /** The roles handed out this step. */
  private readonly used = new Set<string>();
  /** Buffers that a larger request replaced during the step: destroyed when it ends. */
  private retired: GPUBuffer[] = [];
  /** Kept buffers handed out this step, to clear when it begins. */
  private readonly toClear = new Set<GPUBuffer>();
  /** Buffers made this step: zeros already. */
  private readonly fresh = new WeakSet<GPUBuffer>();
  private readonly inputs = new Map<string, Input[]>();
  private readonly bindGroups = new Map<string, CachedBindGroup>();
  /** Numbers for pipelines and buffers, to key the bind groups by. */
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  private step = 0;

  constructor(private readonly device: GPUDevice) {}

  /** The role's buffer, at least `bytes` long, zeros when the step begins. */
  get(role: string, bytes: number): GPUBuffer {
    let buffer = this.buffers.get(role);
    if (!buffer || buffer.size < bytes) {
      if (buffer) this.retired.push(buffer);
      // Room to grow: a decode's partials grow with the cache, a split at a time.
      buffer = createEmptyBuffer(
        this.device,
        buffer ? Math.max(bytes, 2 * buffer.size) : bytes,
        role,
      );
      this.buffers.set(role, buffer);
      this.fresh.add(buffer);
    }
    if (!this.fresh.has(buffer)) this.toClear.add(buffer);
    this.used.add(role);
    return buffer;
  }

  /** A uniform buffer holding `values` (u32, or f32 at `floatIndices`), as createUniformBuffer's. */
  uniform(
    role: string,
    values: ArrayLike<number>,
    floatIndices: readonly number[] = [],
  ): GPUBuffer {
    const words = uniformWords(values, floatIndices);
    return this.input(role, words, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  }

  /** A storage buffer holding `words`, read by the step's dispatches. */
  storage(role: string, words: Uint32Array): GPUBuffer {
    return this.input(
      role,
      words,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    );
  }

  /** bindGroup(device, pipeline, buffers), made once for the same pipeline and buffers. */
  bindGroup(pipeline: GPUComputePipeline, buffers: GPUBuffer[]): GPUBindGroup {
    const key = [pipeline, ...buffers].map((object) => this.id(object)).join(',');
    let cached = this.bindGroups.get(key);
    if (!cached) {
      cached = { group: bindGroup(this.device, pipeline, buffers), step: this.step };
      this.bindGroups.set(key, cached);
    }
    cached.step = this.step;
    return cached.group;
  }

  /** Clears the kept buffers that this step's ops were handed; first in the step's encoder. */
  recordClears(encoder: GPUCommandEncoder): void {
    this.toClear.forEach((buffer) => encoder.clearBuffer(buffer));
  }

  /**
   * Once the step is submitted: frees the buffers it replaced or did not use, and forgets the bind
   * groups it did not record. Destroying a buffer that submitted work uses is safe in WebGPU: that
   * work still runs with it. The next step may be recorded before this one is done, since the
   * queue runs its clears and input writes after this step's dispatches.
   */
  endStep(): void {
    this.retired.forEach((buffer) => buffer.destroy());
    this.retired = [];
    this.toClear.clear();
    for (const [role, buffer] of this.buffers) {
      if (this.used.has(role)) continue;
      buffer.destroy();
      this.buffers.delete(role);
    }
    this.used.clear();
    for (const [role, list] of this.inputs) {
      const kept: Input[] = [];
      for (const input of list) {
        if (input.step === this.step) kept.push(input);
        else input.buffer.destroy();
      }
      if (kept.length > 0) this.inputs.set(role, kept);
      else this.inputs.delete(role);
    }
    for (const [key, cached] of this.bindGroups) {
      if (cached.step !== this.step) this.bindGroups.delete(key);
    }
    this.buffers.forEach((buffer) => this.fresh.delete(buffer));
    this.step += 1;
  }

  destroy(): void {
    this.buffers.forEach((buffer) => buffer.destroy());
    this.retired.forEach((buffer) => buffer.destroy());
    this.inputs.forEach((list) => list.forEach(({ buffer }) => buffer.destroy()));
    this.buffers.clear();
    this.inputs.clear();
    this.bindGroups.clear();
    this.retired = [];
  }

  private input(role: string, words: Uint32Array, usage: number): GPUBuffer {
    const content = words.join(',');
    let list = this.inputs.get(role);
    if (!list) {
      list = [];
      this.inputs.set(role, list);
    }
    const same = list.find((input) => input.step === this.step && input.content === content);
    if (same) return same.buffer;
    let input = list.find(
      (entry) => entry.step !== this.step && entry.buffer.size >= words.byteLength,
    );
    if (!input) {
      const size = Math.max(16, words.byteLength);
      const buffer = this.device.createBuffer({ label: role, size, usage });
      input = { buffer, content: '', step: this.step };
      list.push(input);
    }
    if (input.content !== content) {
      this.device.queue.writeBuffer(
        input.buffer,
        0,
        words.buffer,
        words.byteOffset,
        words.byteLength,
      );
      input.content = content;
    }
    input.step = this.step;
    return input.buffer;
  }

  private id(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(object, id);
    }
    return id;
  }
}

interface Input {
  buffer: GPUBuffer;
  /** The words it holds, joined. */
  content: string;
  /** The last step that used it. */
  step: number;
}

interface CachedBindGroup {
  group: GPUBindGroup;
  /** The last step that recorded it. */
  step: number;
}

/** What a recorder makes its dispatches from: see stepResources. */
export interface StepResources {
  /** An intermediate buffer, zeros when the step begins. */
  buffer(role: string, bytes: number): GPUBuffer;
  uniform(role: string, values: ArrayLike<number>, floatIndices?: readonly number[]): GPUBuffer;
  storage(role: string, words: Uint32Array): GPUBuffer;
  bindGroup(pipeline: GPUComputePipeline, buffers: GPUBuffer[]): GPUBindGroup;
}

/**
 * Where a recorder gets its buffers and bind groups: from the step's scratch when there is one,
 * else made for it, the buffers pushed to `owned` (the caller destroys them).
 */
export function stepResources(
  device: GPUDevice,
  scratch: StepScratch | undefined,
  owned: GPUBuffer[],
): StepResources {
  if (scratch) {
    return {
      buffer: (role, bytes) => scratch.get(role, bytes),
      uniform: (role, values, floatIndices) => scratch.uniform(role, values, floatIndices),
      storage: (role, words) => scratch.storage(role, words),
      bindGroup: (pipeline, buffers) => scratch.bindGroup(pipeline, buffers),
    };
  }
  const own = (buffer: GPUBuffer) => {
    owned.push(buffer);
    return buffer;
  };
  return {
    buffer: (role, bytes) => own(createEmptyBuffer(device, bytes, role)),
    uniform: (role, values, floatIndices) =>
      own(createUniformBuffer(device, values, floatIndices, role)),
    storage: (role, words) => own(createStorageBuffer(device, words, role)),
    bindGroup: (pipeline, buffers) => bindGroup(device, pipeline, buffers),
  };
}
