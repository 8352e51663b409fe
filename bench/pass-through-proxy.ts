/**
 * @module bench/pass-through-proxy
 * Reference 1 (issue 7, dependencies.md): what a bare proxy costs. node:http in, undici out, bytes passed
 * through untouched in both directions with back-pressure, upstream aborted when the client leaves.
 * Run as a child process (BENCH_UPSTREAM_URL) or import createPassThroughProxy.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'trailer', 'host']);

function forwardHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  return out;
}

/** `tap` (benchmark only) may return a listener that sees each upstream body chunk of one request as it passes. */
export function createPassThroughProxy(upstreamUrl: string, tap?: (path: string) => ((chunk: Buffer) => void) | undefined): Server {
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const aborter = new AbortController();
    res.once('close', () => aborter.abort());
    try {
      const upstream = await request(upstreamUrl + (req.url ?? '/'), {
        method: req.method as 'POST',
        headers: forwardHeaders(req.headers),
        body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
        signal: aborter.signal,
        dispatcher: agent,
      });
      res.writeHead(upstream.statusCode, forwardHeaders(upstream.headers));
      res.flushHeaders();
      const listener = tap?.(req.url ?? '/');
      if (listener) upstream.body.on('data', listener);
      await pipeline(upstream.body, res);
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    }
  };
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => void handle(req, res));
  server.once('close', () => void agent.close());
  return server;
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

if (import.meta.main && process.env.BENCH_UPSTREAM_URL) {
  const { serveChildStats } = await import('./lib/child-stats.ts');
  const server = createPassThroughProxy(process.env.BENCH_UPSTREAM_URL);
  serveChildStats(await listen(server));
  process.once('SIGTERM', () => process.exit(0));
}
