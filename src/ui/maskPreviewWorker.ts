/**
 * Plans mask previews off the main thread: a user's mask_mod runs here, so a slow or endless
 * pattern blocks this worker, never the page (maskPreviewClient.ts stops it after a timeout).
 */
import { planMaskPreview } from '../engine/maskPreview';
import { planTokenPicture } from './tokenMask';
import type { MaskPreviewReply, MaskPreviewRequest } from './maskPreviewClient';

self.onmessage = (event: MessageEvent<MaskPreviewRequest>) => {
  const { id, method, seqLen, params, tokens } = event.data;
  let reply: MaskPreviewReply;
  try {
    const preview = planMaskPreview(method, seqLen, params);
    const picture = tokens ? planTokenPicture(method, seqLen, params) : null;
    reply = { id, ok: true, preview, tokens: picture };
  } catch (error) {
    const line =
      error instanceof Error && 'line' in error && typeof error.line === 'number'
        ? error.line
        : null;
    reply = {
      id,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
      line,
    };
  }
  self.postMessage(reply);
};
