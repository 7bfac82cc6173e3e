/**
 * The small results that the ops of one submit read back (the kernels' counts), copied at the end
 * of that submit into the step's own staging buffer, behind its sampled token and timestamps, so a
 * step maps one buffer once. Each op reading its own buffer took a submit, a staging buffer and a
 * map of its own: 30 a step in a 30-layer model, 11% of a Vertical-Slash prefill's CPU time (H100
 * machine, 4K tokens).
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
  private bytesValue = 0;
  private recorded = false;

  /** The first `words` u32 words of `source` as the submit leaves them; before `record`. */
  request(source: GPUBuffer, words: number): Promise<Uint32Array> {
    if (this.recorded) throw new Error('StepReadback: request after record');
    const promise = new Promise<Uint32Array>((resolve, reject) => {
      this.requests.push({ source, offset: this.bytesValue, words, resolve, reject });
    });
    this.bytesValue += Math.max(1, words) * 4;
    // A step that fails before its counts are read must not leave an unhandled rejection.
    promise.catch(() => {});
    return promise;
  }

  /** Bytes the requests take in the staging buffer (a multiple of 4). */
  get bytes(): number {
    return this.bytesValue;
  }

  /**
   * Copies every requested buffer into `staging` from byte `offset` (a multiple of 4) on, after the
   * step's passes; the staging buffer must hold `offset + bytes`.
   */
  record(encoder: GPUCommandEncoder, staging: GPUBuffer, offset: number): void {
    this.recorded = true;
    for (const request of this.requests) {
      const bytes = Math.max(1, request.words) * 4;
      encoder.copyBufferToBuffer(request.source, 0, staging, offset + request.offset, bytes);
    }
  }

  /** After the submit: hands every request its words from the mapped staging bytes. */
  deliver(mapped: ArrayBuffer, offset: number): void {
    for (const request of this.requests) {
      request.resolve(new Uint32Array(mapped, offset + request.offset, request.words));
    }
  }

  /** The submit or its map failed: every request hears of it. */
  fail(error: unknown): void {
    this.requests.forEach(({ reject }) => reject(error));
  }
}
