import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { AttachmentError, AuthenticationError, UpstreamError } from '../../errors.ts';
import type { Session, UploadSource } from '../dialect.ts';
import type { UpstreamHttp } from '../upstream-http.ts';
import { sendJson, testUpstreamHttp } from './__fixtures__/loopback-server.ts';
import { accessToken } from './__fixtures__/test-tokens.ts';
import { sessionFromAccessToken, type ConnectSettings } from './connect-auth.ts';
import { multipartBody, uploadFile, type UploadOptions } from './connect-upload.ts';

const uploadPath = '/apiv2-files/file/upload';
const progressPath = '/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('file upload (§3.10)', () => {
  let server: Server;
  let http: UpstreamHttp;
  let settings: ConnectSettings;
  let session: Session;
  let uploadBytesSeen = 0;
  let received: Received[] = [];
  let answerUpload: (response: ServerResponse) => void;
  let progressStatuses: string[] = [];
  const unknowns: string[] = [];
  const options: UploadOptions = { parsePollIntervalMs: 5, parseTimeoutMs: 2_000, report: (unknown) => unknowns.push(`${unknown.kind}:${unknown.name}`) };

  before(async () => {
    // A server of its own: it counts upload bytes as they arrive, which the shared helper cannot.
    server = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) {
        if (request.url === uploadPath) uploadBytesSeen += (chunk as Buffer).length;
        chunks.push(chunk as Buffer);
      }
      received.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
      if (request.url === uploadPath) return answerUpload(response);
      const status = progressStatuses.length > 1 ? progressStatuses.shift() : progressStatuses[0];
      sendJson(response, 200, { progresses: [{ fileId: 'f-1', status }] });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    http = testUpstreamHttp();
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    settings = { baseUrl: url, authUrl: url, http, clientVersion: '2.2.0', language: 'en-US', timeZone: 'UTC', defaultRetryAfterMs: 60_000, busyRetryAfterMs: 3_000 };
    session = sessionFromAccessToken(accessToken());
  });
  beforeEach(() => {
    uploadBytesSeen = 0;
    received = [];
    unknowns.length = 0;
    progressStatuses = ['PROCESS_STATUS_SUCCESS'];
    answerUpload = (response) => sendJson(response, 200, { file: { id: 'f-1', meta: { name: 'server-name.pdf', contentType: 'application/pdf', sizeBytes: '7', type: 'FILE_TYPE_DOCUMENT' } } });
  });
  after(async () => {
    await http.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function source(bytes: Uint8Array, fileName = 'a.pdf'): UploadSource {
    return {
      fileName,
      mediaType: 'application/pdf',
      sizeBytes: bytes.length,
      kind: 'document',
      body: (async function* () {
        yield bytes;
      })(),
    };
  }

  it('streams a 4 MiB body from a generator without buffering it, byte-exact with a known length', async () => {
    const fileBytes = randomBytes(4 * 1024 * 1024);
    const expectedSha256 = createHash('sha256').update(fileBytes).digest('hex');
    const chunkBytes = 64 * 1024;
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < fileBytes.length; offset += chunkBytes) {
        if (offset === 2 * 1024 * 1024) {
          // Deadlocks (and times out) if the client held the body back until the generator finished.
          const waitUntil = Date.now() + 3_000;
          while (uploadBytesSeen < 1024 * 1024) {
            assert.ok(Date.now() < waitUntil, 'the server saw no bytes before the generator finished: the body was buffered');
            await delay(5);
          }
        }
        yield fileBytes.subarray(offset, offset + chunkBytes);
      }
    }
    const uploaded = await uploadFile(settings, session, { fileName: 'report "q".pdf', mediaType: 'application/pdf', sizeBytes: fileBytes.length, kind: 'document', body: body() }, AbortSignal.timeout(10_000), options);
    assert.deepEqual(uploaded, { id: 'f-1', name: 'server-name.pdf', mediaType: 'application/pdf', sizeBytes: 7, kind: 'document' });

    const upload = received.find((request) => request.path === uploadPath)!;
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(String(upload.headers['content-type']))![1];
    const preamble = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="report %22q%22.pdf"\r\nContent-Type: application/pdf\r\n\r\n`;
    const epilogue = `\r\n--${boundary}--\r\n`;
    assert.equal(Number(upload.headers['content-length']), upload.body.length);
    assert.equal(upload.body.subarray(0, preamble.length).toString('utf8'), preamble);
    assert.equal(upload.body.subarray(upload.body.length - epilogue.length).toString('utf8'), epilogue);
    const filePart = upload.body.subarray(preamble.length, upload.body.length - epilogue.length);
    assert.equal(filePart.length, fileBytes.length);
    assert.equal(createHash('sha256').update(filePart).digest('hex'), expectedSha256);
    assert.equal(upload.headers.authorization, `Bearer ${session.accessToken}`);
  });

  it('polls GetFileParseProgress until SUCCESS', async () => {
    progressStatuses = ['PROCESS_STATUS_PROCESSING', 'PROCESS_STATUS_PROCESSING', 'PROCESS_STATUS_SUCCESS'];
    await uploadFile(settings, session, source(Buffer.from('%PDF-1.')), AbortSignal.timeout(5_000), options);
    const polls = received.filter((request) => request.path === progressPath);
    assert.equal(polls.length, 3);
    assert.deepEqual(JSON.parse(polls[0].body.toString()), { file_ids: ['f-1'] });
    assert.equal(polls[0].headers['content-type'], 'application/json');
    assert.deepEqual(unknowns, []);
  });

  it('PROCESS_STATUS_FAILED → attachment_parse_failed', async () => {
    progressStatuses = ['PROCESS_STATUS_FAILED'];
    await assert.rejects(uploadFile(settings, session, source(Buffer.from('x'), 'bad.pdf'), AbortSignal.timeout(5_000), options), (error: unknown) => {
      assert.ok(error instanceof AttachmentError);
      assert.equal(error.code, 'attachment_parse_failed');
      assert.match(error.message, /bad\.pdf/);
      return true;
    });
  });

  it('a parse that never finishes times out as attachment_parse_failed, and odd statuses are reported', async () => {
    progressStatuses = ['PROCESS_STATUS_QUEUED'];
    await assert.rejects(uploadFile(settings, session, source(Buffer.from('x')), AbortSignal.timeout(5_000), { ...options, parseTimeoutMs: 60 }), (error: unknown) => {
      assert.ok(error instanceof AttachmentError);
      assert.equal(error.code, 'attachment_parse_failed');
      assert.match(error.message, /timed out/);
      return true;
    });
    assert.ok(unknowns.includes('enum:file.status:PROCESS_STATUS_QUEUED'));
  });

  it('upload failures: 500 names the upload step, 401 is an auth error, 413 is too large', async () => {
    answerUpload = (response) => sendJson(response, 500, { code: 'internal', message: 'storage down' });
    await assert.rejects(uploadFile(settings, session, source(Buffer.from('x')), AbortSignal.timeout(5_000), options), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, /file upload.*storage down/);
      return true;
    });
    answerUpload = (response) => sendJson(response, 401, { code: 'unauthenticated' });
    await assert.rejects(uploadFile(settings, session, source(Buffer.from('x')), AbortSignal.timeout(5_000), options), AuthenticationError);
    answerUpload = (response) => sendJson(response, 413, { code: 'resource_exhausted' });
    await assert.rejects(uploadFile(settings, session, source(Buffer.from('x')), AbortSignal.timeout(5_000), options), (error: unknown) => error instanceof AttachmentError && error.code === 'attachment_too_large');
  });

  it('a source shorter than its announced size fails as attachment_invalid', async () => {
    const short: UploadSource = { ...source(Buffer.from('12345')), sizeBytes: 10 };
    await assert.rejects(uploadFile(settings, session, short, AbortSignal.timeout(5_000), options), (error: unknown) => {
      assert.ok(error instanceof AttachmentError, String(error));
      assert.equal(error.code, 'attachment_invalid');
      return true;
    });
  });

  it('multipartBody announces exactly the bytes it yields', async () => {
    const multipart = multipartBody(source(Buffer.from('héllo')), 'b');
    const chunks: Uint8Array[] = [];
    for await (const chunk of multipart.body) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).length, multipart.contentLength);
    assert.equal(multipart.contentType, 'multipart/form-data; boundary=b');
  });
});
