// Pins openAttachment (issue 4 "What must work"): attachments from a loopback file server and from
// base64 data URLs, magic-byte typing, redirects re-checked, the cap enforced while streaming,
// compressed and unsupported bodies refused, timeouts, and temporary files cleaned up.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { AttachmentError, isAbortError } from '../errors.ts';
import {
  buildZip, readAll, sampleElf, samplePdf, samplePng, sampleText, startTestServer, type TestServer,
} from './attachment-test-server.ts';
import { openAttachment, type OpenAttachmentOptions } from './fetch-attachment.ts';
import { createGuardedAgent, type GuardedAgent } from './ssrf-agent.ts';

const cap = 64 * 1024;
const docxMediaType = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
const sampleZip = buildZip([['hello.txt', 'hello']]);
const sampleDocx = buildZip([['[Content_Types].xml', '<Types/>'], ['word/document.xml', '<w:document/>']]);

let server: TestServer;
let agent: GuardedAgent;
let spoolDirectory: string;
const chunkedProgress = { bytesSent: 0, sawClose: false };

function send(res: ServerResponse, body: Buffer, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': String(body.length), ...extra }).end(body);
}

/**
 * Writes 8 KiB chunks, paced at about one per millisecond and honouring backpressure, until the
 * client goes away or 64 MiB are out. The pacing keeps loopback socket buffers (several MiB) from
 * filling, so the byte count the server reaches measures how soon the client hung up.
 */
async function streamUntilClosed(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.on('close', () => {
    chunkedProgress.sawClose = true;
  });
  const chunk = Buffer.alloc(8 * 1024, 'a');
  while (!res.destroyed && chunkedProgress.bytesSent < 64 * 1024 * 1024) {
    chunkedProgress.bytesSent += chunk.length;
    if (!res.write(chunk)) await drainOrClose(res);
    await delay(1);
  }
  res.end();
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

before(async () => {
  spoolDirectory = await mkdtemp(join(tmpdir(), 'attachment-test-'));
  server = await startTestServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const redirect = /^\/redirect\/(\d+)$/.exec(path);
    if (redirect !== null) {
      const left = Number(redirect[1]);
      res.writeHead(302, { location: left === 0 ? '/files/a.png' : `/redirect/${left - 1}` }).end();
      return;
    }
    switch (path) {
      case '/files/a.png': return send(res, samplePng, 'image/png');
      case '/files/doc.pdf': return send(res, samplePdf, 'application/octet-stream');
      case '/files/notes.txt': return send(res, sampleText, 'text/plain; charset=utf-8');
      case '/files/table.csv': return send(res, Buffer.from('a,b\n1,2\n'), 'text/csv');
      case '/download': return send(res, samplePdf, 'application/pdf');
      case '/disposition':
        return send(res, samplePdf, 'application/pdf', { 'content-disposition': "attachment; filename=\"x.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf" });
      case '/chunked/notes.txt': res.writeHead(200, { 'content-type': 'text/plain' }); res.write(sampleText.subarray(0, 10)); res.end(sampleText.subarray(10)); return;
      case '/chunked/a.png': res.writeHead(200, { 'content-type': 'image/png' }); res.write(samplePng.subarray(0, 20)); res.end(samplePng.subarray(20)); return;
      case '/big-declared': res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(10 * 1024 * 1024) }); res.flushHeaders(); return;
      case '/big-chunked': void streamUntilClosed(res); return;
      case '/big-streamed': {
        const body = Buffer.alloc(8 * 1024 * 1024, 'z');
        return send(res, body, 'text/plain');
      }
      case '/gzip': return send(res, gzipSync(sampleText), 'text/plain', { 'content-encoding': 'gzip' });
      case '/files/tool': return send(res, sampleElf, 'application/octet-stream');
      case '/files/archive.zip': return send(res, sampleZip, 'application/zip');
      case '/files/report': return send(res, sampleDocx, docxMediaType);
      case '/files/report.docx': return send(res, sampleDocx, 'application/octet-stream');
      case '/missing': res.writeHead(404).end('nope'); return;
      case '/stall-headers': return;
      case '/stall-body': res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' }); res.write(Buffer.alloc(8192, 'b')); return;
      default: res.writeHead(500).end();
    }
  });
  agent = createGuardedAgent({ allowPrivate: true, connectTimeoutMs: 1000 });
});

after(async () => {
  await agent.close();
  await server.close();
  await rm(spoolDirectory, { recursive: true, force: true });
});

function options(extra: Partial<OpenAttachmentOptions> = {}): OpenAttachmentOptions {
  return { agent, kind: 'document', maxBytes: cap, totalTimeoutMs: 2000, tempDirectory: spoolDirectory, ...extra };
}

function isCode(code: string, message?: RegExp) {
  return (error: unknown) =>
    error instanceof AttachmentError && error.code === code && (message === undefined || message.test(error.message));
}

const loopbackCases: Array<[string, 'image' | 'document', Buffer, string, string]> = [
  ['/files/a.png', 'image', samplePng, 'image/png', 'a.png'],
  ['/files/doc.pdf', 'document', samplePdf, 'application/pdf', 'doc.pdf'],
  ['/files/notes.txt', 'document', sampleText, 'text/plain', 'notes.txt'],
  ['/files/table.csv', 'document', Buffer.from('a,b\n1,2\n'), 'text/csv', 'table.csv'],
];

for (const [path, kind, bytes, mediaType, fileName] of loopbackCases) {
  test(`loopback ${path} with allowPrivate streams exactly, typed ${mediaType} (issue 4)`, async () => {
    const attachment = await openAttachment(`${server.origin}${path}`, options({ kind }));
    try {
      assert.equal(attachment.mediaType, mediaType);
      assert.equal(attachment.fileName, fileName);
      assert.equal(attachment.kind, kind);
      assert.equal(attachment.sizeBytes, bytes.length);
      assert.deepEqual(await readAll(attachment.body), bytes);
    } finally {
      attachment.release();
    }
  });

  test(`data URL of ${fileName} decodes to the same bytes and type (issue 4 base64)`, async () => {
    const url = `data:${mediaType};base64,${bytes.toString('base64')}`;
    const attachment = await openAttachment(url, options({ kind, fileNameHint: fileName }));
    assert.equal(attachment.mediaType, mediaType);
    assert.equal(attachment.fileName, fileName);
    assert.equal(attachment.sizeBytes, bytes.length);
    assert.deepEqual(await readAll(attachment.body), bytes);
    // Data-URL bodies are re-readable, so an upload retry on another account can replay them.
    assert.deepEqual(await readAll(attachment.body), bytes);
  });
}

test('type comes from magic bytes, not the header; names from Content-Disposition, path or ordinal', async () => {
  const pdf = await openAttachment(`${server.origin}/files/doc.pdf`, options());
  assert.equal(pdf.mediaType, 'application/pdf'); // served as application/octet-stream
  pdf.release();
  const disposition = await openAttachment(`${server.origin}/disposition`, options());
  assert.equal(disposition.fileName, '报告.pdf');
  disposition.release();
  const download = await openAttachment(`${server.origin}/download?id=7`, options());
  assert.equal(download.fileName, 'download.pdf');
  download.release();
  const anonymous = await openAttachment(`data:;base64,${samplePng.toString('base64')}`, options({ ordinal: 3 }));
  assert.equal(anonymous.fileName, 'attachment-3.png');
  assert.equal(anonymous.mediaType, 'image/png');
});

test('a large body with Content-Length streams in bounded chunks without spooling', async () => {
  const size = 8 * 1024 * 1024;
  const attachment = await openAttachment(`${server.origin}/big-streamed`, options({ maxBytes: 16 * 1024 * 1024 }));
  let total = 0;
  let largestChunk = 0;
  for await (const chunk of attachment.body) {
    total += chunk.byteLength;
    largestChunk = Math.max(largestChunk, chunk.byteLength);
  }
  attachment.release();
  assert.equal(attachment.sizeBytes, size);
  assert.equal(total, size);
  assert.ok(largestChunk <= 1024 * 1024, `largest chunk ${largestChunk}`);
  assert.deepEqual(await readdir(spoolDirectory), []);
  assert.throws(() => attachment.body[Symbol.asyncIterator](), /read only once/);
});

test('no Content-Length: spooled to a 0600 temp file, size known, file deleted on release', async () => {
  for (const [path, bytes, mediaType] of [['/chunked/notes.txt', sampleText, 'text/plain'], ['/chunked/a.png', samplePng, 'image/png']] as const) {
    const attachment = await openAttachment(`${server.origin}${path}`, options());
    const files = await readdir(spoolDirectory);
    assert.equal(files.length, 1);
    assert.equal((await stat(join(spoolDirectory, files[0]))).mode & 0o777, 0o600);
    assert.equal(attachment.sizeBytes, bytes.length);
    assert.equal(attachment.mediaType, mediaType);
    assert.deepEqual(await readAll(attachment.body), bytes);
    attachment.release();
    attachment.release();
    await waitFor(async () => (await readdir(spoolDirectory)).length === 0);
  }
});

test('redirects are followed up to 3 hops and refused beyond (issue 4)', async () => {
  const followed = await openAttachment(`${server.origin}/redirect/2`, options({ kind: 'image' }));
  assert.equal(followed.fileName, 'a.png');
  assert.deepEqual(await readAll(followed.body), samplePng);
  followed.release();
  await assert.rejects(
    openAttachment(`${server.origin}/redirect/3`, options({ kind: 'image' })),
    isCode('attachment_unreachable', /redirected more than 3 times/),
  );
});

test('a redirect from an allowed host to a loopback literal is refused: every hop is re-checked', async () => {
  const relay = await startTestServer((req, res) => {
    const target = req.url === '/to-allowed' ? `http://files.example.com:${relayPort()}/a.png` : `${server.origin}/files/a.png`;
    if (req.url === '/a.png') return send(res, samplePng, 'image/png');
    res.writeHead(302, { location: target }).end();
  }, '127.0.0.2');
  const relayPort = () => relay.port;
  const guarded = createGuardedAgent({
    allowPrivate: false,
    connectTimeoutMs: 1000,
    allowedCidrs: ['127.0.0.2/32'],
    lookup: async () => [{ address: '127.0.0.2', family: 4 }],
  });
  try {
    const before = server.connectionCount();
    // Control: hop 1 works without allowPrivate, and so does a hop to another allowed name.
    const allowed = await openAttachment(`http://files.example.com:${relay.port}/to-allowed`, options({ agent: guarded, kind: 'image' }));
    assert.deepEqual(await readAll(allowed.body), samplePng);
    allowed.release();
    await assert.rejects(
      openAttachment(`http://files.example.com:${relay.port}/to-loopback`, options({ agent: guarded, kind: 'image' })),
      isCode('attachment_url_forbidden', /127\.0\.0\.1.*loopback/),
    );
    assert.equal(server.connectionCount(), before);
  } finally {
    await guarded.close();
    await relay.close();
  }
});

test('a declared Content-Length over the cap is refused before reading the body', async () => {
  const started = Date.now();
  await assert.rejects(openAttachment(`${server.origin}/big-declared`, options()), isCode('attachment_too_large', /10485760 bytes/));
  assert.ok(Date.now() - started < 1500, 'refused without waiting for the body');
});

test('no Content-Length and over the cap: the transfer stops right after the cap (issue 4 "stop early")', async () => {
  await assert.rejects(openAttachment(`${server.origin}/big-chunked`, options()), isCode('attachment_too_large'));
  await waitFor(async () => chunkedProgress.sawClose);
  // The server saw the disconnect after roughly the cap (64 KiB; the bound leaves room for a busy
  // event loop), not after its 64 MiB body.
  assert.ok(chunkedProgress.bytesSent < 1024 * 1024, `server sent ${chunkedProgress.bytesSent} bytes`);
  assert.deepEqual(await readdir(spoolDirectory), []);
});

test('a compressed Content-Encoding is refused', async () => {
  await assert.rejects(openAttachment(`${server.origin}/gzip`, options()), isCode('attachment_unreachable', /Content-Encoding: gzip/));
});

test('invalid base64 and malformed data URLs are attachment_invalid', async () => {
  for (const url of [
    'data:image/png;base64,iVBORw0KGgo$$$$',
    'data:image/png;base64,iVBORw0KGgoAA',
    'data:image/png;base64,iV BORw0KGgo=',
    'data:text/plain,hello',
    'data:image/png;base64',
    'data:;base64,',
  ]) {
    await assert.rejects(openAttachment(url, options()), isCode('attachment_invalid'), url);
  }
});

test('a data URL over the cap is refused by its encoded length', async () => {
  const payload = 'A'.repeat(Math.ceil((cap + 3) / 3) * 4);
  await assert.rejects(openAttachment(`data:text/plain;base64,${payload}`, options()), isCode('attachment_too_large'));
});

test('unsupported types: ELF, a plain zip, and a non-image behind image_url', async () => {
  await assert.rejects(openAttachment(`${server.origin}/files/tool`, options()), isCode('attachment_type_unsupported', /ELF/));
  await assert.rejects(openAttachment(`${server.origin}/files/archive.zip`, options()), isCode('attachment_type_unsupported', /ZIP/));
  await assert.rejects(
    openAttachment(`data:application/octet-stream;base64,${sampleElf.toString('base64')}`, options()),
    isCode('attachment_type_unsupported'),
  );
  await assert.rejects(
    openAttachment(`${server.origin}/files/doc.pdf`, options({ kind: 'image' })),
    isCode('attachment_type_unsupported', /image_url/),
  );
  await assert.rejects(
    openAttachment(`data:image/png;base64,${sampleText.toString('base64')}`, options({ kind: 'image' })),
    isCode('attachment_type_unsupported'),
  );
});

test('a zip is accepted as an Office document when the Content-Type or the name says so', async () => {
  const byType = await openAttachment(`${server.origin}/files/report`, options());
  assert.equal(byType.mediaType, docxMediaType);
  assert.equal(byType.fileName, 'report.docx');
  byType.release();
  const byName = await openAttachment(`${server.origin}/files/report.docx`, options());
  assert.equal(byName.mediaType, docxMediaType);
  assert.deepEqual(await readAll(byName.body), sampleDocx);
  byName.release();
});

test('non-2xx answers are attachment_unreachable with the status', async () => {
  await assert.rejects(openAttachment(`${server.origin}/missing`, options()), isCode('attachment_unreachable', /HTTP 404/));
  const closed = await startTestServer(() => undefined);
  const port = closed.port;
  await closed.close();
  await assert.rejects(openAttachment(`http://127.0.0.1:${port}/x`, options()), isCode('attachment_unreachable', /connection refused/));
});

test('timeouts: no headers in time, and a body that stalls mid-stream surfaces from the iterator', async () => {
  const started = Date.now();
  await assert.rejects(
    openAttachment(`${server.origin}/stall-headers`, options({ totalTimeoutMs: 300 })),
    isCode('attachment_unreachable', /timed out/),
  );
  assert.ok(Date.now() - started < 1500);
  const stalled = await openAttachment(`${server.origin}/stall-body`, options({ totalTimeoutMs: 300, maxBytes: 200_000 }));
  assert.equal(stalled.sizeBytes, 100_000);
  await assert.rejects(readAll(stalled.body), isCode('attachment_unreachable', /timed out/));
  stalled.release();
});

test("the caller's abort passes through as an abort, not an attachment error", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const error = await openAttachment(`${server.origin}/stall-headers`, options({ signal: controller.signal })).catch((e) => e);
  assert.ok(isAbortError(error), String(error));
  assert.ok(!(error instanceof AttachmentError));
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
