/**
 * Large base64 attachments end to end (issue 4, memory): a ~3 MiB PNG-headed file sent inline through the
 * `openai` and Anthropic SDKs is spooled to a private temporary file while the body is read, reaches the
 * simulator byte for byte (its reply names size and sha256, simulator/reply-text.ts), survives a failover
 * retry (the file is read again), and the temporary files are gone once the response has closed. Refusals
 * (invalid base64, over the cap, a forged placeholder) make no upstream call and leave no file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { ChatCompletionContentPart } from 'openai/resources/chat/completions';
import { buildPng, replyFileLine, replyFileLinePattern } from '../support/attachment-samples.ts';
import { startStack, type Stack } from '../support/stack.ts';

// os.tmpdir() follows TMPDIR, and the gateway runs in this process: its spool files land where we can watch.
const spoolDirectory = mkdtempSync(join(tmpdir(), 'kfa-spool-e2e-'));
process.env.TMPDIR = spoolDirectory;

const capBytes = 4 * 1024 * 1024;
let stack: Stack;
let openai: OpenAI;

before(async () => {
  // The parse wait keeps the request open long enough for the watcher to see the spool files.
  stack = await startStack({ accounts: 2, env: { ATTACHMENT_MAX_BYTES: String(capBytes) }, simulator: { imageParseDelayMs: 250, documentParseDelayMs: 250 } });
  openai = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await stack?.close();
  rmSync(spoolDirectory, { recursive: true, force: true });
});

beforeEach(() => stack.simulator.reset());

/** A valid small PNG followed by `sizeBytes` of varied bytes: magic bytes say PNG, the hash covers every byte. */
function pngHeaded(sizeBytes: number, seed: number): Buffer {
  const tail = Buffer.alloc(sizeBytes);
  for (let index = 0; index < sizeBytes; index += 1) tail[index] = (index * 2654435761 + seed * 97) >>> 24;
  return Buffer.concat([buildPng(4, 3), tail]);
}

const spoolFiles = () => readdirSync(spoolDirectory).filter((name) => name.startsWith('kfa-spool-'));

/** Runs `action` while watching the spool folder; returns the result and how many spool files existed at once. */
async function watchSpool<T>(action: () => Promise<T>): Promise<{ result: T; mostAtOnce: number }> {
  let mostAtOnce = 0;
  const timer = setInterval(() => (mostAtOnce = Math.max(mostAtOnce, spoolFiles().length)), 5);
  try {
    return { result: await action(), mostAtOnce };
  } finally {
    clearInterval(timer);
  }
}

/** The files are deleted when the response closes, which the client may see a moment before the server. */
async function assertSpoolEmpty(): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (spoolFiles().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(spoolFiles(), [], 'every spool file is deleted after the response');
}

const isUploadOrChat = (path: string, method: string) =>
  /ChatService\/Chat|\/api\/chat|\/apiv2-files\/file\/upload|\/api\/pre-sign-url|\/api\/file/.test(path) || method === 'PUT';

const big = pngHeaded(3 * 1024 * 1024, 1);
const second = pngHeaded(1024 * 1024, 2);
const dataUrlOf = (bytes: Buffer) => `data:image/png;base64,${bytes.toString('base64')}`;

test('issue 4: two inline attachments (3 MiB and 1 MiB) are spooled, arrive intact, and their files are gone after the answer', async () => {
  const content: ChatCompletionContentPart[] = [
    { type: 'text', text: 'Describe both.' },
    { type: 'image_url', image_url: { url: dataUrlOf(big) } },
    { type: 'file', file: { file_data: dataUrlOf(second), filename: 'scan.png' } },
  ];
  const { result, mostAtOnce } = await watchSpool(() => openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content }] }));
  const reply = result.choices[0].message.content ?? '';
  assert.match(reply, replyFileLinePattern('png', big));
  assert.ok(reply.includes(replyFileLine('scan.png', second)), reply);
  assert.equal(mostAtOnce, 2, 'both strings went to disk while the request ran');
  await assertSpoolEmpty();
});

test('issue 4: a streamed answer after a failover reads the spooled file a second time for the second account', async () => {
  const [first, other] = stack.accounts;
  stack.simulator.setScenario('overload-free-user', { userId: first.userId });
  const { result: text, mostAtOnce } = await watchSpool(async () => {
    const stream = await openai.chat.completions.create({
      model: 'kimi',
      stream: true,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: dataUrlOf(big) } }] }],
    });
    let collected = '';
    for await (const chunk of stream) collected += chunk.choices[0]?.delta?.content ?? '';
    return collected;
  });
  assert.match(text, replyFileLinePattern('png', big));
  assert.equal(mostAtOnce, 1);
  const sizes = (userId: string) => stack.simulator.files(userId).map((file) => file.sizeBytes);
  assert.ok(sizes(first.userId).includes(big.length), 'the first account got the upload before it failed');
  assert.ok(sizes(other.userId).includes(big.length), 'the second account got the same bytes again');
  await assertSpoolEmpty();
});

test('issue 4: the Responses API (data URL and bare base64 file_data) and the Anthropic API (base64 source) spool too', async () => {
  const responses = await watchSpool(() =>
    openai.responses.create({
      model: 'kimi',
      input: [{ role: 'user', content: [
        { type: 'input_text', text: 'Both, please.' },
        { type: 'input_image', image_url: dataUrlOf(big), detail: 'auto' },
        { type: 'input_file', file_data: second.toString('base64'), filename: 'scan.png' },
      ] }],
    }),
  );
  assert.match(responses.result.output_text, replyFileLinePattern('png', big));
  assert.ok(responses.result.output_text.includes(replyFileLine('scan.png', second)), responses.result.output_text);
  assert.equal(responses.mostAtOnce, 2);
  await assertSpoolEmpty();

  const anthropic = new Anthropic({ baseURL: stack.gatewayUrl, apiKey: stack.token, maxRetries: 0, timeout: 15_000 });
  const message = await watchSpool(() =>
    anthropic.messages.create({
      model: 'kimi',
      max_tokens: 256,
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: big.toString('base64') } },
      ] }],
    }),
  );
  const answer = message.result.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
  assert.match(answer, replyFileLinePattern('png', big));
  assert.equal(message.mostAtOnce, 1);
  await assertSpoolEmpty();
});

async function expectRefusal(content: ChatCompletionContentPart[], code: string): Promise<void> {
  await assert.rejects(
    openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content }] }),
    (error: unknown) => error instanceof OpenAI.APIError && error.status === 400 && error.code === code,
  );
}

test('issue 4: invalid base64 deep inside, an attachment over the cap and a forged placeholder are 400s with no upstream call', async () => {
  const encoded = big.toString('base64');
  const middle = encoded.length >> 1;
  await expectRefusal([{ type: 'image_url', image_url: { url: `data:image/png;base64,${encoded.slice(0, middle)}!${encoded.slice(middle + 1)}` } }], 'attachment_invalid');
  await expectRefusal([{ type: 'image_url', image_url: { url: dataUrlOf(pngHeaded(capBytes, 3)) } }], 'attachment_too_large');
  await expectRefusal([{ type: 'image_url', image_url: { url: 'kfa-spool:AAAAAAAAAAAAAAAAAAAAAAAA' } }], 'attachment_invalid');
  await expectRefusal([{ type: 'file', file: { file_data: 'data:image/png;base64,kfa-spool:AAAAAAAAAAAAAAAAAAAAAAAA', filename: 'x.png' } }], 'attachment_invalid');
  assert.deepEqual(stack.simulator.requests.filter((request) => isUploadOrChat(request.path, request.method)), [], 'no upload and no chat upstream');
  await assertSpoolEmpty();
});
