/**
 * Attachments end to end (issue 4) through the `openai` SDK against the real gateway and the simulator, on both
 * dialects: files and images by http URL (a loopback file server) and by base64 data URL, several per message,
 * from earlier messages of the history; the SSRF guard, the size cap while streaming, type sniffing; upload and
 * parse failures upstream (spec §2.3 legacy pre-sign/PUT/file/parse_process, §3.10 multipart upload + parse
 * progress). The simulator's reply names every attached file with its size and sha256, so an exact reply line
 * proves the bytes arrived intact.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { simulatedReply } from '../../simulator/reply-text.ts';
import type { RecordedRequest, Simulator } from '../../simulator/simulator.ts';
import { startAttachmentFileServer, type AttachmentFileServer } from '../support/attachment-file-server.ts';
import { dataUrl, replyFileLine, replyFileLinePattern, samples, sha256Hex, type SampleFile } from '../support/attachment-samples.ts';
import { startStack, type Stack } from '../support/stack.ts';

const dialects = [
  { name: 'current', tokenKind: 'current' as const },
  { name: 'legacy', tokenKind: 'legacy' as const },
];

const capBytes = 65_536;
const hugeBytes = 10 * 1024 * 1024;

/** `file_url` is the gateway's (gpt-4-vision style) part; the SDK's types know only `file.file_data`. */
function fileUrlPart(url: string): ChatCompletionContentPart {
  return { type: 'file', file_url: { url } } as unknown as ChatCompletionContentPart;
}
function imagePart(url: string): ChatCompletionContentPart {
  return { type: 'image_url', image_url: { url } };
}
function fileDataPart(file: SampleFile, filename: string): ChatCompletionContentPart {
  return { type: 'file', file: { file_data: dataUrl(file), filename } };
}

/** Upload traffic by dialect: §3.10 one multipart POST per file; §2.3 pre-sign, PUT, register, parse wait. */
function uploadRequestsOf(requests: RecordedRequest[]) {
  return {
    multipart: requests.filter((request) => request.method === 'POST' && request.path.startsWith('/apiv2-files/file/upload')),
    preSign: requests.filter((request) => request.path.startsWith('/api/pre-sign-url')),
    put: requests.filter((request) => request.method === 'PUT'),
    register: requests.filter((request) => request.method === 'POST' && request.path.split('?')[0] === '/api/file'),
  };
}

/** Chat creation, chat streams and uploads: the endpoints a refused attachment must never reach. */
function isChatOrUpload(request: RecordedRequest): boolean {
  return /ChatService\/Chat|\/api\/chat|\/apiv2-files\/|\/api\/pre-sign-url|\/api\/file|\/oss\//.test(request.path) || request.method === 'PUT';
}

async function expectApiError(promise: Promise<unknown>, status: number, code: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, `an OpenAI APIError, got ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.equal(error.code, code, error.message);
    assert.doesNotMatch(error.message, /at \w+ \(|node:internal|\.ts:\d+/, 'no stack trace in the envelope');
    return error;
  }
  assert.fail(`expected ${status} ${code}, the request succeeded`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())]);
}

for (const dialect of dialects) {
  describe(`attachments on the ${dialect.name} dialect (issue 4)`, () => {
    let files: AttachmentFileServer;
    let stack: Stack;
    let guarded: Stack;
    let failing: Stack;
    let simulator: Simulator;
    let client: OpenAI;
    let guardedClient: OpenAI;
    let failingClient: OpenAI;
    const markerStyle = dialect.name === 'legacy' ? 'none' : 'e3a3';

    before(async () => {
      files = await startAttachmentFileServer(
        {
          '/docs/quarterly-report.pdf': { bytes: samples.pdf.bytes, mediaType: 'application/pdf' },
          '/docs/notes.txt': { bytes: samples.text.bytes, mediaType: samples.text.mediaType },
          '/img/chart.png': { bytes: samples.png.bytes, mediaType: 'image/png' },
          // Declared as a PDF: only the magic bytes can tell it is an executable.
          '/docs/program.pdf': { bytes: samples.elf.bytes, mediaType: 'application/pdf' },
        },
        { path: '/huge.txt', totalBytes: hugeBytes, chunkBytes: 64 * 1024, pauseMs: 1 },
      );
      // Keeps chats (-1) so a conversation can be continued; the cap is small so "too large" is cheap to reach.
      stack = await startStack({ tokenKind: dialect.tokenKind, env: { ATTACHMENT_MAX_BYTES: String(capBytes), CHAT_RETENTION_SECONDS: '-1' } });
      simulator = stack.simulator;
      guarded = await startStack({ tokenKind: dialect.tokenKind, existingSimulator: simulator, env: { ALLOW_PRIVATE_ATTACHMENT_URLS: '0' } });
      failing = await startStack({
        tokenKind: dialect.tokenKind,
        existingSimulator: simulator,
        env: { CHAT_RETENTION_SECONDS: '0', ATTACHMENT_PARSE_TIMEOUT_MS: '1000' },
      });
      const clientFor = (target: Stack) => new OpenAI({ baseURL: `${target.gatewayUrl}/v1`, apiKey: target.token, maxRetries: 0, timeout: 15_000 });
      client = clientFor(stack);
      guardedClient = clientFor(guarded);
      failingClient = clientFor(failing);
    });
    after(async () => {
      await failing?.close();
      await guarded?.close();
      await stack?.close();
      await files?.close();
    });

    const ask = (target: OpenAI, messages: ChatCompletionMessageParam[], extra: Partial<ChatCompletionCreateParamsNonStreaming> = {}) =>
      target.chat.completions.create({ model: 'kimi', messages, ...extra });

    function assertUploadsRecorded(since: number, count: number): void {
      const uploads = uploadRequestsOf(simulator.requests.slice(since));
      if (dialect.name === 'current') {
        assert.equal(uploads.multipart.length, count, 'one multipart upload per attachment (§3.10)');
      } else {
        assert.equal(uploads.preSign.length, count, 'one pre-sign per attachment (§2.3)');
        assert.equal(uploads.put.length, count, 'one PUT per attachment (§2.3)');
        assert.equal(uploads.register.length, count, 'one /api/file per attachment (§2.3)');
      }
    }

    /** The simulator stored each file under this account with exactly these bytes (full sha256, not a prefix). */
    function assertStoredFiles(target: Stack, expected: SampleFile[], newerThan: number): void {
      const stored = simulator.files(target.accounts[0].userId).filter((file) => file.uploadedAt >= newerThan);
      for (const file of expected) {
        assert.ok(
          stored.some((candidate) => candidate.sha256 === sha256Hex(file.bytes) && candidate.sizeBytes === file.bytes.length),
          `${file.name} stored upstream byte for byte`,
        );
      }
    }

    test('a PDF, a text file and a PNG by URL in one message: each named with exact size and sha256 (§2.3/§3.10)', async () => {
      const since = simulator.requests.length;
      const startedAt = Date.now();
      const userText = 'Summarise these three files.';
      const completion = await ask(client, [
        {
          role: 'user',
          content: [
            { type: 'text', text: userText },
            fileUrlPart(`${files.origin}/docs/quarterly-report.pdf`),
            fileUrlPart(`${files.origin}/docs/notes.txt`),
            imagePart(`${files.origin}/img/chart.png`),
          ],
        },
      ]);
      const expectedFiles = [
        { name: 'quarterly-report.pdf', file: samples.pdf },
        { name: 'notes.txt', file: samples.text },
        { name: 'chart.png', file: samples.png },
      ];
      const expected = simulatedReply({
        userText,
        turn: 1,
        markerStyle,
        files: expectedFiles.map(({ name, file }) => ({ name, sizeBytes: file.bytes.length, sha256: sha256Hex(file.bytes) })),
      });
      assert.equal(completion.choices[0].message.content, expected.plainText);
      for (const { name, file } of expectedFiles) assert.ok(completion.choices[0].message.content?.includes(replyFileLine(name, file.bytes)));
      assertUploadsRecorded(since, 3);
      assertStoredFiles(stack, [samples.pdf, samples.text, samples.png], startedAt);
    });

    test('the same three as base64 data URLs (file.file_data with filename, file_url, image_url)', async () => {
      const since = simulator.requests.length;
      const startedAt = Date.now();
      const completion = await ask(client, [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare the inline files.' },
            fileDataPart(samples.pdf, 'inline-report.pdf'),
            fileUrlPart(dataUrl(samples.text)),
            imagePart(dataUrl(samples.png)),
          ],
        },
      ]);
      const answer = completion.choices[0].message.content ?? '';
      assert.ok(answer.includes(replyFileLine('inline-report.pdf', samples.pdf.bytes)), answer);
      // No name was given for these two: the gateway names them attachment-N.<detected extension>.
      assert.match(answer, replyFileLinePattern('txt', samples.text.bytes));
      assert.match(answer, replyFileLinePattern('png', samples.png.bytes));
      assertUploadsRecorded(since, 3);
      assertStoredFiles(stack, [samples.pdf, samples.text, samples.png], startedAt);
    });

    test('an attachment in an earlier message is sent once with the history; a continuation uploads only the new one', async () => {
      let since = simulator.requests.length;
      const history: ChatCompletionMessageParam[] = [
        { role: 'user', content: [{ type: 'text', text: 'Here is the report.' }, fileUrlPart(`${files.origin}/docs/quarterly-report.pdf`)] },
        { role: 'assistant', content: 'Noted, I have the report.' },
        { role: 'user', content: 'What does it say about revenue?' },
      ];
      const first = await ask(client, history);
      assert.ok(first.choices[0].message.content?.includes(replyFileLine('quarterly-report.pdf', samples.pdf.bytes)), first.choices[0].message.content ?? '');
      assertUploadsRecorded(since, 1);

      since = simulator.requests.length;
      const next = await ask(
        client,
        [
          ...history,
          { role: 'assistant', content: first.choices[0].message.content ?? '' },
          { role: 'user', content: [{ type: 'text', text: 'And this chart?' }, imagePart(`${files.origin}/img/chart.png`)] },
        ],
        // @ts-expect-error gateway extension: continue the upstream chat
        { conversation_id: first.id },
      );
      assert.equal(next.id, first.id);
      const answer = next.choices[0].message.content ?? '';
      assert.ok(answer.includes(replyFileLine('chart.png', samples.png.bytes)), answer);
      assertUploadsRecorded(since, 1);
    });

    test('invalid base64 in a data URL → 400 attachment_invalid, nothing sent upstream', async () => {
      const since = simulator.requests.length;
      await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileUrlPart('data:text/plain;base64,SGVsbG8@!*==')] }]), 400, 'attachment_invalid');
      assert.deepEqual(simulator.requests.slice(since).filter(isChatOrUpload), []);
    });

    test('over ATTACHMENT_MAX_BYTES: a 10 MB chunked body is cut off early → 400 attachment_too_large', async () => {
      const since = simulator.requests.length;
      const error = await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileUrlPart(`${files.origin}/huge.txt`)] }]), 400, 'attachment_too_large');
      assert.match(error.message, new RegExp(String(capBytes)));
      const outcome = await withTimeout(files.lastStream(), 5_000, 'the file server seeing the client disconnect');
      assert.equal(outcome.isComplete, false, 'the gateway stopped reading before the end');
      assert.ok(outcome.bytesWritten < 1024 * 1024, `the fetch stopped early (${outcome.bytesWritten} of ${hugeBytes} bytes written)`);
      // A data URL over the cap is refused from its length, before decoding.
      const big = Buffer.alloc(capBytes + 1, 'b');
      await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileUrlPart(`data:text/plain;base64,${big.toString('base64')}`)] }]), 400, 'attachment_too_large');
      assert.deepEqual(simulator.requests.slice(since).filter(isChatOrUpload), []);
    });

    test('unsupported types by magic bytes → 400 attachment_type_unsupported (ELF by URL and data URL, PDF as image_url)', async () => {
      const since = simulator.requests.length;
      const elfByUrl = await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileUrlPart(`${files.origin}/docs/program.pdf`)] }]), 400, 'attachment_type_unsupported');
      assert.match(elfByUrl.message, /ELF/);
      await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileDataPart(samples.elf, 'program.pdf')] }]), 400, 'attachment_type_unsupported');
      await expectApiError(ask(client, [{ role: 'user', content: [{ type: 'text', text: 'x' }, imagePart(dataUrl(samples.pdf))] }]), 400, 'attachment_type_unsupported');
      assert.deepEqual(simulator.requests.slice(since).filter(isChatOrUpload), []);
    });

    describe('without ALLOW_PRIVATE_ATTACHMENT_URLS', () => {
      test('a loopback URL → 400 attachment_url_forbidden; no request reaches Kimi or the file server', async () => {
        const requestsBefore = simulator.requests.length;
        const connectionsBefore = files.connectionCount();
        const error = await expectApiError(
          ask(guardedClient, [{ role: 'user', content: [{ type: 'text', text: 'x' }, fileUrlPart(`${files.origin}/docs/notes.txt`)] }]),
          400,
          'attachment_url_forbidden',
        );
        assert.equal(error.type, 'invalid_request_error');
        assert.deepEqual(simulator.requests.slice(requestsBefore), [], 'zero upstream requests');
        assert.equal(files.connectionCount(), connectionsBefore, 'the file server was never contacted');
      });

      test('hostile spellings (decimal, hex, octal, short, IPv4-mapped IPv6, ::1, localhost, metadata, file:) are all refused', async () => {
        const port = files.port;
        const hostile = [
          `http://2130706433:${port}/docs/notes.txt`,
          `http://0x7f000001:${port}/docs/notes.txt`,
          `http://0177.0.0.1:${port}/docs/notes.txt`,
          `http://127.1:${port}/docs/notes.txt`,
          `http://[::ffff:127.0.0.1]:${port}/docs/notes.txt`,
          `http://[::ffff:7f00:1]:${port}/docs/notes.txt`,
          `http://[::1]:${port}/docs/notes.txt`,
          `http://localhost:${port}/docs/notes.txt`,
          `http://0.0.0.0:${port}/docs/notes.txt`,
          'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
          'file:///etc/passwd',
        ];
        const requestsBefore = simulator.requests.length;
        const connectionsBefore = files.connectionCount();
        for (const [index, url] of hostile.entries()) {
          const part = index % 2 === 0 ? fileUrlPart(url) : imagePart(url);
          await expectApiError(ask(guardedClient, [{ role: 'user', content: [{ type: 'text', text: 'x' }, part] }]), 400, 'attachment_url_forbidden').catch((error: unknown) => {
            throw new Error(`${url}: ${(error as Error).message}`);
          });
        }
        assert.deepEqual(simulator.requests.slice(requestsBefore), [], 'zero upstream requests');
        assert.equal(files.connectionCount(), connectionsBefore, 'the file server was never contacted');
      });

      test('a valid data URL next to a refused URL: every attachment is checked before any upload', async () => {
        const requestsBefore = simulator.requests.length;
        await expectApiError(
          ask(guardedClient, [{ role: 'user', content: [{ type: 'text', text: 'x' }, imagePart(dataUrl(samples.png)), fileUrlPart(`http://127.0.0.1:${files.port}/docs/notes.txt`)] }]),
          400,
          'attachment_url_forbidden',
        );
        assert.deepEqual(simulator.requests.slice(requestsBefore), []);
      });
    });

    describe('upload and parse failures upstream (CHAT_RETENTION_SECONDS=0)', () => {
      /** New chats of the failing stack's account that were not deleted (uploads come before the chat, so often none exist). */
      async function leftoverChats(chatIdsBefore: Set<string>) {
        await failing.gateway.chat.idle();
        return simulator.chats(failing.accounts[0].userId).filter((chat) => !chatIdsBefore.has(chat.id) && !chat.deleted);
      }
      const chatIds = () => new Set(simulator.chats(failing.accounts[0].userId).map((chat) => chat.id));

      test('parse failure → 400 attachment_parse_failed naming the file; no chat left; the next request works', async () => {
        const chatsBefore = chatIds();
        simulator.setScenario('parse-failed', { userId: failing.accounts[0].userId, times: 1 });
        const since = simulator.requests.length;
        const error = await expectApiError(
          ask(failingClient, [{ role: 'user', content: [{ type: 'text', text: 'Read this.' }, fileUrlPart(`${files.origin}/docs/notes.txt`)] }]),
          400,
          'attachment_parse_failed',
        );
        assert.match(error.message, /notes\.txt/);
        assertUploadsRecorded(since, 1);
        assert.deepEqual(await leftoverChats(chatsBefore), []);
        const retry = await ask(failingClient, [{ role: 'user', content: [{ type: 'text', text: 'Read this.' }, fileUrlPart(`${files.origin}/docs/notes.txt`)] }]);
        assert.ok(retry.choices[0].message.content?.includes(replyFileLine('notes.txt', samples.text.bytes)));
        assert.deepEqual(await leftoverChats(chatsBefore), [], 'the answered chat was deleted too (retention 0)');
      });

      test('parse slower than ATTACHMENT_PARSE_TIMEOUT_MS → 400 attachment_parse_failed within the limit', async () => {
        const chatsBefore = chatIds();
        simulator.setScenario('parse-slow', { userId: failing.accounts[0].userId, times: 1 });
        const startedAt = Date.now();
        const error = await expectApiError(
          ask(failingClient, [{ role: 'user', content: [{ type: 'text', text: 'Slow.' }, fileUrlPart(`${files.origin}/docs/quarterly-report.pdf`)] }]),
          400,
          'attachment_parse_failed',
        );
        const elapsedMs = Date.now() - startedAt;
        assert.ok(elapsedMs < 2_800, `gave up at the 1 s limit, before the 3 s parse finished (${elapsedMs} ms)`);
        assert.match(error.message, /quarterly-report\.pdf/);
        assert.deepEqual(await leftoverChats(chatsBefore), []);
      });

      test('upload rejected upstream → 502 upstream_error naming the upload step; no chat left', async () => {
        const chatsBefore = chatIds();
        simulator.setScenario('upload-rejected', { userId: failing.accounts[0].userId, times: 1 });
        const since = simulator.requests.length;
        const error = await expectApiError(
          ask(failingClient, [{ role: 'user', content: [{ type: 'text', text: 'Upload.' }, imagePart(`${files.origin}/img/chart.png`)] }]),
          502,
          'upstream_error',
        );
        const uploads = uploadRequestsOf(simulator.requests.slice(since));
        assert.ok(uploads.multipart.length + uploads.register.length >= 1, 'the upload was attempted');
        assert.deepEqual(await leftoverChats(chatsBefore), []);
        assert.equal(error.type, 'api_error');
        // The simulator's own error text says "simulated upload rejection"; the gateway must name the step itself.
        const gatewayWords = error.message.replace(/simulated upload rejection/gi, '');
        assert.match(gatewayWords, /upload/i, `the gateway's message names the upload step: ${error.message}`);
      });
    });
  });
}
