/**
 * The small results that the ops of one submit read back (the kernels' counts), copied at the end
 * of that submit into one staging buffer and mapped once. Each op reading its own buffer took a
 * submit, a staging buffer and a map of its own: 30 a step in a 30-layer model, 11% of a
 * Vertical-Slash prefill's CPU time (H100 machine, 4K tokens).
 */
interface Request {
  source: GPUBuffer;
  offset: number;
  words: number;
  resolve: (words: Uint32Array) => void;
  reject: (error: unknown) => void;
}

export class StepReadback {
  private readonly requests: Request[] = [];
  private bytes = 0;
  private staging: GPUBuffer | null = null;

  constructor(private readonly device: GPUDevice) {}

  /** The first `words` u32 words of `source` as the submit leaves them; before `record`. */
  request(source: GPUBuffer, words: number): Promise<Uint32Array> {
    if (this.staging) throw new Error('StepReadback: request after record');
    const promise = new Promise<Uint32Array>((resolve, reject) => {
      this.requests.push({ source, offset: this.bytes, words, resolve, reject });
    });
    this.bytes += Math.max(1, words) * 4;
    // A step that fails before its counts are read must not leave an unhandled rejection.
    promise.catch(() => {});
    return promise;
  }

  /** Copies every requested buffer into the staging buffer, after the step's passes. */
  record(encoder: GPUCommandEncoder): void {
    if (this.requests.length === 0) return;
    this.staging = this.device.createBuffer({
      label: 'step readback',
      size: this.bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    for (const { source, offset, words } of this.requests) {
      encoder.copyBufferToBuffer(source, 0, this.staging, offset, Math.max(1, words) * 4);
    }
  }

  /**
   * After the submit: maps the staging buffer once and hands every request its words; a failure
   * rejects every request instead (so this never rejects: whoever awaits a request hears of it).
   */
  async resolve(): Promise<void> {
    if (!this.staging) return;
    try {
      await this.staging.mapAsync(GPUMapMode.READ);
      const all = this.staging.getMappedRange().slice(0);
      this.staging.unmap();
      for (const { offset, words, resolve } of this.requests) {
        resolve(new Uint32Array(all, offset, words));
      }
    } catch (error) {
      this.requests.forEach(({ reject }) => reject(error));
    }
  }

  destroy(): void {
    this.staging?.destroy();
  }
}
