/**
 * @module test/support/fault-proxy
 * A loopback proxy in front of the simulator for faults the simulator has no scenario for: it forwards
 * every request, and when a rule matches the path it reads the upstream answer whole, lets the rule rewrite
 * status, headers and bytes, and sends the result in chosen pieces with a pause between them (so each piece
 * arrives in its own read), waiting for `drain` like a real server when the gateway stops reading.
 * Test support only; point KIMI_BASE_URL / KIMI_LEGACY_BASE_URL at `url`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface FaultRule {
  /** Which upstream paths the rule applies to. */
  path: RegExp;
  /** Rewrites the whole upstream answer. */
  rewrite?(answer: UpstreamAnswer): UpstreamAnswer;
  /** Byte offsets at which the body is cut into separate writes (ascending, inside the body). */
  splitAt?(body: Buffer): number[];
  /** Pause between pieces (default 2 ms, enough for separate reads on loopback; 0 = one event-loop turn). */
  pauseMs?: number;
}

export interface FaultProxy {
  url: string;
  setRule(rule: FaultRule | undefined): void;
  /** Requests whose path matched the current rule so far. */
  readonly matched: number;
  /** Rule-driven writes the gateway did not take at once (it had stopped reading): upstream back-pressure. */
  readonly stalledWrites: number;
  close(): Promise<void>;
}

const dropped = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);

function plainHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !dropped.has(name)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  let rule: FaultRule | undefined;
  let matched = 0;
  let stalledWrites = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const body = await readAll(req);
    const upstream = await request(upstreamUrl + path, {
      method: req.method as 'POST',
      headers: plainHeaders(req.headers),
      body: body.length > 0 ? body : undefined,
    });
    const active = rule && rule.path.test(path) ? rule : undefined;
    if (!active) {
      res.writeHead(upstream.statusCode, plainHeaders(upstream.headers));
      for await (const chunk of upstream.body) res.write(chunk);
      return void res.end();
    }
    matched += 1;
    let answer: UpstreamAnswer = { status: upstream.statusCode, headers: plainHeaders(upstream.headers), body: await readAll(upstream.body) };
    if (active.rewrite) answer = active.rewrite(answer);
    res.writeHead(answer.status, answer.headers);
    let start = 0;
    for (const cut of [...(active.splitAt?.(answer.body) ?? []), answer.body.length]) {
      if (cut <= start || cut > answer.body.length) continue;
      if (!res.write(answer.body.subarray(start, cut))) {
        stalledWrites += 1;
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
      start = cut;
      const pauseMs = active.pauseMs ?? 2;
      await new Promise((resolve) => (pauseMs === 0 ? setImmediate(resolve) : setTimeout(resolve, pauseMs)));
      if (res.destroyed) return;
    }
    res.end();
  };
  const server = createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setRule(next) {
      rule = next;
      matched = 0;
      stalledWrites = 0;
    },
    get matched() {
      return matched;
    },
    get stalledWrites() {
      return stalledWrites;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Connect envelope boundaries of a stream body: [start, end) of each frame (spec §3.2). */
export function connectFrames(body: Buffer): { start: number; end: number; flags: number }[] {
  const frames: { start: number; end: number; flags: number }[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const end = offset + 5 + body.readUInt32BE(offset + 1);
    frames.push({ start: offset, end, flags: body[offset] });
    offset = end;
  }
  return frames;
}

/**
 * Runs `run` with `rule` set, and clears it afterwards whatever happens. Fails when the rule never matched, so a
 * test cannot pass without the fault it names having been injected.
 */
export async function withFaultRule<T>(proxy: FaultProxy, rule: FaultRule, run: () => Promise<T>): Promise<T> {
  proxy.setRule(rule);
  try {
    const result = await run();
    if (proxy.matched === 0) throw new Error('the fault was never injected: no request matched the rule');
    return result;
  } finally {
    proxy.setRule(undefined);
  }
}

/** Offsets of every UTF-8 continuation byte whose position inside its character is `position` (1, 2 or 3). */
export function offsetsInsideCharacters(body: Buffer, position: number): number[] {
  const offsets: number[] = [];
  for (let index = 0; index < body.length; index += 1) {
    const byte = body[index];
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    if (length > position) offsets.push(index + position);
    if (length > 1) index += length - 1;
  }
  return offsets;
}
