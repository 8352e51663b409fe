/**
 * @module upstream/legacy/legacy-upload.test
 * Pins the legacy upload flow (spec §2.3): pre-sign, streamed PUT to another host, registration, parse polling.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AttachmentError, UpstreamError } from '../../errors.ts';
import type { UploadSource } from '../dialect.ts';
import { createLegacyDialect, type LegacyDialect } from './legacy-dialect.ts';
import { refsFileEntry } from './legacy-upload.ts';
import { createTestHttp, sendJson, startLoopbackServer, testSession, type LoopbackServer } from './legacy-test-server.ts';
import type { UpstreamHttp } from '../upstream-http.ts';

const totalBytes = 4 * 1024 * 1024 + 123;
const chunkBytes = 64 * 1024;

interface StorageReceipt {
  sha256: string;
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
  url: string;
}

/** Deterministic pseudo-random bytes, so a reordered or dropped chunk changes the hash. */
function chunkAt(offset: number, length: number): Uint8Array {
  const chunk = new Uint8Array(length);
  for (let index = 0; index < length; index += 1) chunk[index] = ((offset + index) * 2654435761) >>> 24;
  return chunk;
}

function expectedSha256(): string {
  const hash = createHash('sha256');
  for (let offset = 0; offset < totalBytes; offset += chunkBytes) hash.update(chunkAt(offset, Math.min(chunkBytes, totalBytes - offset)));
  return hash.digest('hex');
}

describe('legacy uploadFile over loopback (§2.3)', () => {
  let api: LoopbackServer;
  let storage: LoopbackServer;
  let http: UpstreamHttp;
  let dialect: LegacyDialect;
  let receipt: Promise<StorageReceipt>;
  let firstBytesArrived: Promise<void>;
  let storageStatus = 200;

  before(async () => {
    api = await startLoopbackServer();
    storage = await startLoopbackServer();
    http = createTestHttp();
    dialect = createLegacyDialect({ baseUrl: api.url, http, parseTimeoutMs: 400, parsePollInitialMs: 20 });
  });
  beforeEach(() => {
    api.requests.length = 0;
    api.routes.clear();
    storageStatus = 200;
    let markFirstBytes: () => void = () => {};
    firstBytesArrived = new Promise((resolve) => (markFirstBytes = resolve));
    receipt = new Promise((resolve) => {
      storage.rawHandler = (request, response) => {
        const hash = createHash('sha256');
        let bytes = 0;
        request.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
          markFirstBytes();
        });
        request.on('end', () => {
          response.writeHead(storageStatus).end(storageStatus === 200 ? '' : '<Error>SignatureDoesNotMatch X-Signature=secret</Error>');
          resolve({ sha256: hash.digest('hex'), bytes, headers: request.headers, url: request.url ?? '' });
        });
        return true;
      };
    });
    api.routes.set('POST /api/pre-sign-url', (_request, response) =>
      sendJson(response, 200, { url: `${storage.url}/bucket/obj-1?X-Signature=secret`, object_name: 'obj-1', file_id: 'pre-file-1' }),
    );
  });
  after(async () => {
    await http.close();
    await api.close();
    await storage.close();
  });

  /** Yields half the bytes, then waits until the storage host has some: proves the body is streamed, not buffered. */
  function streamedSource(kind: UploadSource['kind']): UploadSource {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < totalBytes; offset += chunkBytes) {
        if (offset === 32 * chunkBytes) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('upload body was buffered before sending')), 3_000)));
          await Promise.race([firstBytesArrived, timeout]).finally(() => clearTimeout(timer));
        }
        yield chunkAt(offset, Math.min(chunkBytes, totalBytes - offset));
      }
    }
    return { fileName: kind === 'image' ? 'photo.png' : '报告.pdf', mediaType: kind === 'image' ? 'image/png' : 'application/pdf', sizeBytes: totalBytes, kind, body: body() };
  }

  it('streams a document byte-exact to the pre-signed host, registers it and polls parse_process until parsed', async () => {
    let parseCalls = 0;
    api.routes.set('POST /api/file', (_request, response) => sendJson(response, 200, { id: 'file-1', name: '报告.pdf', size: totalBytes, status: 'initialized' }));
    api.routes.set('POST /api/file/parse_process', (_request, response) => {
      parseCalls += 1;
      const status = parseCalls < 2 ? 'parsing' : 'parsed';
      response.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: {"event":"resp","file_info":{"id":"file-1","status":"${status}"}}\n\n`);
    });
    const uploaded = await dialect.uploadFile(testSession, streamedSource('document'), AbortSignal.timeout(10_000));
    const received = await receipt;
    assert.equal(received.sha256, expectedSha256());
    assert.equal(received.bytes, totalBytes);
    assert.equal(received.headers['content-length'], String(totalBytes));
    assert.equal(received.headers['content-type'], 'application/pdf');
    assert.equal(received.headers.authorization, undefined, 'no Kimi token to the storage host');
    assert.equal(received.url, '/bucket/obj-1?X-Signature=secret');
    const calls = api.requests.map((request) => [request.path, request.json]);
    assert.deepEqual(calls, [
      ['/api/pre-sign-url', { action: 'file', name: '报告.pdf' }],
      ['/api/file', { type: 'file', name: '报告.pdf', object_name: 'obj-1', file_id: '' }],
      ['/api/file/parse_process', { ids: ['file-1'], timeout: (api.requests[2].json as { timeout: number }).timeout }],
      ['/api/file/parse_process', { ids: ['file-1'], timeout: (api.requests[3].json as { timeout: number }).timeout }],
    ]);
    assert.ok((api.requests[2].json as { timeout: number }).timeout <= 1_000);
    assert.deepEqual(uploaded, {
      id: 'file-1',
      name: '报告.pdf',
      mediaType: 'application/pdf',
      sizeBytes: totalBytes,
      kind: 'document',
      detail: { id: 'file-1', name: '报告.pdf', size: totalBytes, status: 'parsed' },
    });
    assert.equal(refsFileEntry(uploaded).parse_status, 'success');
  });

  it('registers an image with its pre-signed file id and does not poll parsing', async () => {
    api.routes.set('POST /api/file', (_request, response) => sendJson(response, 200, { id: 'img-1', name: 'photo.png', size: totalBytes }));
    const uploaded = await dialect.uploadFile(testSession, streamedSource('image'), AbortSignal.timeout(10_000));
    assert.equal((await receipt).sha256, expectedSha256());
    assert.deepEqual(api.requests.map((request) => request.json), [
      { action: 'image', name: 'photo.png' },
      { type: 'image', file_id: 'pre-file-1', name: 'photo.png' },
    ]);
    assert.equal(uploaded.kind, 'image');
    assert.equal(uploaded.id, 'img-1');
  });

  it('maps a failed parse to attachment_parse_failed', async () => {
    api.routes.set('POST /api/file', (_request, response) => sendJson(response, 200, { id: 'file-2', status: 'initialized' }));
    api.routes.set('POST /api/file/parse_process', (_request, response) => sendJson(response, 200, { status: 'failed' }));
    await assert.rejects(dialect.uploadFile(testSession, streamedSource('document'), AbortSignal.timeout(10_000)), (error: unknown) => {
      assert.ok(error instanceof AttachmentError);
      assert.equal(error.code, 'attachment_parse_failed');
      return true;
    });
  });

  it('gives up after parseTimeoutMs with attachment_parse_failed', async () => {
    api.routes.set('POST /api/file', (_request, response) => sendJson(response, 200, { id: 'file-3', status: 'initialized' }));
    api.routes.set('POST /api/file/parse_process', (_request, response) =>
      response.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {"status":"parsing"}\n\n'),
    );
    const started = Date.now();
    await assert.rejects(dialect.uploadFile(testSession, streamedSource('document'), AbortSignal.timeout(10_000)), (error: unknown) => {
      assert.ok(error instanceof AttachmentError);
      assert.match(error.message, /within 400 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 3_000);
  });

  it('reports a refused PUT without leaking the signed URL', async () => {
    storageStatus = 403;
    await assert.rejects(dialect.uploadFile(testSession, streamedSource('image'), AbortSignal.timeout(10_000)), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, /HTTP 403/);
      assert.equal(error.message.includes('secret'), false);
      return true;
    });
  });
});
