/**
 * The page's side of maskPreviewWorker.ts: one plan at a time in a worker, stopped (the worker
 * terminated and replaced) when it runs past the timeout or when a newer request supersedes it.
 */
import type { MaskPreview } from '../engine/maskPreview';
import type { MethodName, MethodParams } from '../methods/types';
import type { TokenPicture } from './tokenMask';

export interface MaskPreviewRequest {
  id: number;
  method: MethodName;
  seqLen: number;
  params: Partial<MethodParams>;
  /** Also plan the token-level picture. */
  tokens: boolean;
}

/** A plan's pictures: block level always, token level when asked. */
export interface PlannedPreview {
  preview: MaskPreview;
  tokens: TokenPicture | null;
}

export type MaskPreviewReply =
  | ({ id: number; ok: true } & PlannedPreview)
  | { id: number; ok: false; message: string; line: number | null };

/** How long a plan may run before it is taken for a runaway pattern. */
export const PREVIEW_TIMEOUT_MS = 4000;

/** A plan that failed: the method's message and, for a mask_mod, the line in its source. */
export class PreviewError extends Error {
  readonly line: number | null;
  constructor(message: string, line: number | null) {
    super(message);
    this.name = 'PreviewError';
    this.line = line;
  }
}

/** A plan replaced by a newer one before it finished; callers ignore it. */
export class PreviewSuperseded extends Error {
  constructor() {
    super('superseded by a newer preview');
    this.name = 'PreviewSuperseded';
  }
}

interface Pending {
  id: number;
  resolve: (planned: PlannedPreview) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class MaskPreviewClient {
  private worker: Worker | null = null;
  private pending: Pending | null = null;
  private nextId = 1;

  constructor(private readonly timeoutMs = PREVIEW_TIMEOUT_MS) {}

  plan(
    method: MethodName,
    seqLen: number,
    params: Partial<MethodParams>,
    tokens: boolean,
  ): Promise<PlannedPreview> {
    // A busy worker may be stuck in user code: replace it rather than queue behind it.
    if (this.pending) {
      this.settle(this.pending.id, (p) => p.reject(new PreviewSuperseded()));
      this.stopWorker();
    }
    const worker = this.startWorker();
    const id = this.nextId++;
    return new Promise<PlannedPreview>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stopWorker();
        this.settle(id, (p) =>
          p.reject(
            new PreviewError(
              `the pattern ran for more than ${this.timeoutMs / 1000} s and was stopped ` +
                '(an endless loop, or too much work per element?)',
              null,
            ),
          ),
        );
      }, this.timeoutMs);
      this.pending = { id, resolve, reject, timer };
      worker.postMessage({ id, method, seqLen, params, tokens } satisfies MaskPreviewRequest);
    });
  }

  dispose(): void {
    if (this.pending) this.settle(this.pending.id, (p) => p.reject(new PreviewSuperseded()));
    this.stopWorker();
  }

  private settle(id: number, action: (pending: Pending) => void): void {
    const pending = this.pending;
    if (!pending || pending.id !== id) return;
    clearTimeout(pending.timer);
    this.pending = null;
    action(pending);
  }

  private startWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./maskPreviewWorker.ts', import.meta.url), {
      type: 'module',
    });
    worker.onmessage = (event: MessageEvent<MaskPreviewReply>) => {
      const reply = event.data;
      this.settle(reply.id, (p) =>
        reply.ok
          ? p.resolve({ preview: reply.preview, tokens: reply.tokens })
          : p.reject(new PreviewError(reply.message, reply.line)),
      );
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const pending = this.pending;
      this.stopWorker();
      if (pending) {
        this.settle(pending.id, (p) =>
          p.reject(new PreviewError(`the preview worker failed: ${event.message}`, null)),
        );
      }
    };
    this.worker = worker;
    return worker;
  }

  private stopWorker(): void {
    this.worker?.terminate();
    this.worker = null;
  }
}
