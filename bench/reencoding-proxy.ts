/**
 * @module bench/reencoding-proxy
 * Reference 2 (dependencies.md "How to read the benchmark targets"): the minimal re-encoding proxy. The
 * pass-through reference plus what any OpenAI-to-Kimi translation must do: parse the OpenAI body, build the
 * Connect envelope, decode frames, JSON.parse each event, emit one OpenAI chunk per text event, and write
 * everything decoded from one upstream read in one res.write. No accounts, retries, validation or logging:
 * the floor the gateway's CPU per event is compared with (B4). Child process: BENCH_UPSTREAM_URL and
 * BENCH_ACCESS_TOKENS (comma-separated access JWTs, used round-robin).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { answerTextOf, chatRequestEnvelope, FrameDecoder } from './lib/connect-frames.ts';
import { listen } from './pass-through-proxy.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';

async function readJson(req: IncomingMessage): Promise<{ messages: { role: string; content: string }[]; stream?: boolean; model?: string }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function chunkLine(id: string, created: number, model: string, content: string): string {
  return `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
}

export function createReencodingProxy(upstreamUrl: string, accessTokens: string[]): Server {
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  let turn = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const aborter = new AbortController();
    res.once('close', () => aborter.abort());
    try {
      const body = await readJson(req);
      const text = body.messages.filter((message) => message.role === 'user').at(-1)?.content ?? '';
      const token = accessTokens[turn++ % accessTokens.length];
      const upstream = await request(upstreamUrl + chatPath, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/connect+json', 'connect-protocol-version': '1' },
        body: chatRequestEnvelope(text),
        signal: aborter.signal,
        dispatcher: agent,
      });
      const decoder = new FrameDecoder();
      const id = `chatcmpl-${turn}`;
      const created = Math.floor(Date.now() / 1000);
      const model = body.model ?? 'kimi';
      if (body.stream) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).flushHeaders();
      let answer = '';
      for await (const chunk of upstream.body) {
        let out = '';
        for (const frame of decoder.push(chunk as Buffer)) {
          const event = JSON.parse(frame.payload.toString('utf8'));
          const piece = frame.flags === 0 ? answerTextOf(event) : undefined;
          if (piece === undefined) continue;
          if (body.stream) out += chunkLine(id, created, model, piece);
          else answer += piece;
        }
        // One write per upstream read (coalesced), and back-pressure: wait for drain before reading on.
        if (out && !res.write(out)) await new Promise((resolve) => res.once('drain', resolve));
      }
      if (body.stream) return void res.end('data: [DONE]\n\n');
      const completion = { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    }
  };
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => void handle(req, res));
  server.once('close', () => void agent.close());
  return server;
}

if (import.meta.main && process.env.BENCH_UPSTREAM_URL) {
  const { serveChildStats } = await import('./lib/child-stats.ts');
  const server = createReencodingProxy(process.env.BENCH_UPSTREAM_URL, (process.env.BENCH_ACCESS_TOKENS ?? '').split(','));
  serveChildStats(await listen(server));
  process.once('SIGTERM', () => process.exit(0));
}
