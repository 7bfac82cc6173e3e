/**
 * A local stand-in for the Hugging Face Hub: serves model folders in the Hub's URL layout
 * `<endpoint>/<owner>/<name>/resolve/<revision>/<file>`, with byte ranges (206 + Content-Range),
 * CORS for a page on another port, and the Hub's answers for what it cannot give: 404 with
 * X-Error-Code RepoNotFound / EntryNotFound, and the status and code a restricted repo is given.
 * Every request is recorded, so tests can count what reached the network.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

export interface HubRequest {
  method: string;
  path: string;
  range: string | null;
}

export interface HubServerOptions {
  /** repo id -> folder holding its files. */
  repos: Record<string, string>;
  /** repo id -> the refusal a gated or private repo gets (the Hub: 401 or 403, GatedRepo). */
  restricted?: Record<string, { status: number; code?: string }>;
  /**
   * Sends this fraction of a whole safetensors file, then holds the rest until resume(), so a
   * test can see (and photograph) a download in progress.
   */
  pauseWeightsAt?: number;
}

export interface HubServer {
  endpoint: string;
  requests: HubRequest[];
  /** Lets held downloads (pauseWeightsAt) finish, and later ones pass without holding. */
  resume(): void;
  close(): Promise<void>;
}

const corsHeaders = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'range',
  'access-control-expose-headers': 'content-range, content-length, x-error-code',
};

function parseRange(header: string | undefined, size: number): [number, number] | null {
  const match = header ? /^bytes=(\d+)-(\d*)$/.exec(header) : null;
  if (!match) return null;
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  return start <= end ? [start, end] : null;
}

async function sendInTwoParts(
  response: ServerResponse,
  body: Uint8Array,
  split: number,
  resumed: Promise<void>,
): Promise<void> {
  response.write(body.subarray(0, split));
  await resumed;
  if (!response.destroyed) response.end(body.subarray(split));
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const requests: HubRequest[] = [];
  let resume = () => {};
  const resumed = new Promise<void>((resolve) => (resume = resolve));
  let held = options.pauseWeightsAt !== undefined;
  const handle = async (
    request: IncomingMessage,
  ): Promise<{
    status: number;
    headers: Record<string, string>;
    body?: Uint8Array;
  }> => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://hub').pathname);
    if (request.method === 'OPTIONS') return { status: 204, headers: {} };
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!match) return { status: 404, headers: { 'x-error-code': 'RepoNotFound' } };
    const [, repo, , file] = match;
    const refusal = options.restricted?.[repo];
    if (refusal) {
      return {
        status: refusal.status,
        headers: refusal.code ? { 'x-error-code': refusal.code } : {},
      };
    }
    const folder = options.repos[repo];
    if (!folder) return { status: 404, headers: { 'x-error-code': 'RepoNotFound' } };
    const filePath = normalize(join(folder, file));
    if (!filePath.startsWith(normalize(folder))) return { status: 403, headers: {} };
    let bytes: Uint8Array;
    try {
      bytes = await readFile(filePath);
    } catch {
      return { status: 404, headers: { 'x-error-code': 'EntryNotFound' } };
    }
    const range = parseRange(request.headers.range, bytes.byteLength);
    if (range) {
      const [start, end] = range;
      return {
        status: 206,
        headers: { 'content-range': `bytes ${start}-${end}/${bytes.byteLength}` },
        body: bytes.subarray(start, end + 1),
      };
    }
    return { status: 200, headers: {}, body: bytes };
  };

  const server: Server = createServer((request, response) => {
    requests.push({
      method: request.method ?? 'GET',
      path: request.url ?? '/',
      range: request.headers.range ?? null,
    });
    handle(request).then(
      ({ status, headers, body }) => {
        const length = body ? { 'content-length': String(body.byteLength) } : {};
        response.writeHead(status, { ...corsHeaders, ...headers, ...length });
        if (!body || request.method === 'HEAD') response.end();
        else if (held && status === 200 && request.url?.endsWith('.safetensors')) {
          const split = Math.floor(body.byteLength * (options.pauseWeightsAt ?? 0));
          void sendInTwoParts(response, body, split, resumed);
        } else response.end(body);
      },
      (error: Error) => response.writeHead(500, corsHeaders).end(error.message),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    resume: () => {
      held = false;
      resume();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
