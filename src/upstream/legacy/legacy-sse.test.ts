/**
 * @module upstream/legacy/legacy-sse.test
 * Pins byte-exact SSE decoding (spec §2.5, §9 D14) on byte arrays and across real TCP writes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readSseMessageBatches, readSsePayloads, type LegacyUnknownKind } from './legacy-sse.ts';
import { createTestHttp, readFixture, startLoopbackServer, type LoopbackServer } from './legacy-test-server.ts';
import type { UpstreamHttp } from '../upstream-http.ts';

const tricky = '你好，世界！🌍🚀 Kimi 答：1+1=2 😀👍🏽 — 完';

async function decode(chunks: Uint8Array[]): Promise<{ payloads: unknown[]; unknown: string[] }> {
  const unknown: string[] = [];
  const payloads: unknown[] = [];
  const onUnknown = (kind: LegacyUnknownKind, name: string) => unknown.push(`${kind}:${name}`);
  for await (const payload of readSsePayloads(toAsync(chunks), onUnknown)) payloads.push(payload.data);
  return { payloads, unknown };
}

async function* toAsync(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

describe('readSsePayloads on byte arrays (§2.5)', () => {
  it('decodes fixture (a) fed one byte at a time', async () => {
    const bytes = Buffer.from(readFixture('a-plain-answer.sse'));
    const single = [...bytes].map((byte) => Uint8Array.of(byte));
    const { payloads } = await decode(single);
    assert.deepEqual(
      payloads.map((payload) => (payload as { event: string }).event),
      ['req', 'resp', 'cmpl', 'cmpl', 'all_done'],
    );
  });

  it('keeps a Chinese+emoji text byte-exact when split at every byte offset (§9 D14)', async () => {
    const bytes = Buffer.from(`data: ${JSON.stringify({ event: 'cmpl', text: tricky })}\n\n`);
    for (let offset = 1; offset < bytes.length; offset += 1) {
      const { payloads } = await decode([bytes.subarray(0, offset), bytes.subarray(offset)]);
      assert.deepEqual(payloads, [{ event: 'cmpl', text: tricky }], `split at byte ${offset}`);
    }
  });

  it('tolerates event: lines, keep-alive comments, CRLF, blank data and non-JSON data lines', async () => {
    const text = [
      ': keep-alive',
      '',
      'event: cmpl',
      'data: {"event":"cmpl","text":"a"}',
      '',
      'data:',
      '',
      'data: [DONE]',
      '',
      'data: {"event":"all_done"}',
      '',
      '',
    ].join('\r\n');
    const { payloads, unknown } = await decode([Buffer.from(text)]);
    assert.deepEqual(payloads, [{ event: 'cmpl', text: 'a' }, { event: 'all_done' }]);
    assert.deepEqual(unknown, ['payload:non-json']);
  });

  it('splits data lines that a server separated with single newlines, and keeps a final event without its blank line', async () => {
    const text = 'data: {"event":"cmpl","text":"x"}\ndata: {"event":"cmpl","text":"y"}\n\ndata: {"event":"all_done"}';
    const { payloads } = await decode([Buffer.from(text)]);
    assert.deepEqual(payloads, [{ event: 'cmpl', text: 'x' }, { event: 'cmpl', text: 'y' }, { event: 'all_done' }]);
  });
});

describe('readSseMessageBatches (one batch per run of chunks)', () => {
  it('hands over what a run completes as one batch (empty when it completes none); a character or event split across runs comes out whole in the next', async () => {
    const event = (text: string) => Buffer.from(`data: ${JSON.stringify({ event: 'cmpl', text })}\n\n`);
    const split = event(tricky);
    const cut = split.indexOf(Buffer.from('🌍')) + 2;
    async function* runs(): AsyncGenerator<Uint8Array[]> {
      yield [event('a'), event('b'), split.subarray(0, cut)];
      yield [split.subarray(cut), event('c')];
      yield [Buffer.from(': keep-alive\n\n')];
      yield [Buffer.from('data: {"event":"all_done"}')];
    }
    const batches: unknown[][] = [];
    for await (const batch of readSseMessageBatches(runs())) batches.push(batch.map((message) => (JSON.parse(message.data) as { text?: string; event: string }).text ?? JSON.parse(message.data)));
    // The keep-alive run and the run holding an unfinished event give empty batches: the reader's progress check runs on them.
    assert.deepEqual(batches, [['a', 'b'], [tricky, 'c'], [], [], [{ event: 'all_done' }]]);
  });
});

describe('readSsePayloads over loopback TCP (§9 D14)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  const body = Buffer.from(`data: ${JSON.stringify({ event: 'cmpl', text: tricky })}\n\ndata: {"event":"all_done"}\n\n`);

  before(async () => {
    server = await startLoopbackServer();
    http = createTestHttp();
    server.routes.set('GET /split', (request, response) => {
      const offset = Number(new URL(request.url ?? '/', server.url).searchParams.get('at'));
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(body.subarray(0, offset));
      // A pause makes the two halves separate TCP segments and separate reads on the client.
      setTimeout(() => response.end(body.subarray(offset)), 2);
    });
  });
  after(async () => {
    await http.close();
    await server.close();
  });

  it('decodes the text byte-exact for a TCP split at every byte offset of the first event', async () => {
    const firstEventEnd = body.indexOf('\n\n') + 2;
    for (let offset = 1; offset < firstEventEnd; offset += 1) {
      const response = await http.send({ url: `${server.url}/split?at=${offset}`, signal: AbortSignal.timeout(5_000) });
      const texts: string[] = [];
      for await (const payload of readSsePayloads(response.body)) {
        const data = payload.data as { text?: string };
        if (data.text !== undefined) texts.push(data.text);
      }
      assert.equal(texts.join(''), tricky, `TCP split at byte ${offset}`);
      assert.equal(Buffer.from(texts.join('')).equals(Buffer.from(tricky)), true);
    }
  });
});
