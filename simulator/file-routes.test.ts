// Uploads on the simulator: multipart + parse progress (§3.10), legacy pre-sign flow (§2.3), file blocks in Chat.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startSimulator, simulatedReply, type Simulator, type SimulatedAccount } from './simulator.ts';
import { answerText, chatBody, getJson, postChat, postJson, postLegacyCompletion } from './test-helpers.ts';

let simulator: Simulator;
let account: SimulatedAccount;
// A manual clock makes parse timing deterministic however loaded the machine is.
let now = Date.parse('2026-11-28T00:00:00Z');
const PROGRESS = '/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress';

before(async () => {
  simulator = await startSimulator({ documentParseDelayMs: 300, maxUploadBytes: 64 * 1024, clock: () => now });
  account = simulator.issueAccount();
});
after(() => simulator.close());

/** Sends a multipart body in 7-byte pieces so the parser sees boundaries split everywhere. */
async function upload(name: string, contentType: string, bytes: Buffer, token = account.accessToken) {
  const boundary = 'simBoundary42';
  const multipart = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: ${contentType}\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const pieces = Array.from({ length: Math.ceil(multipart.length / 7) }, (_unused, index) => multipart.subarray(index * 7, index * 7 + 7));
  const response = await request(`${simulator.url}/apiv2-files/file/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Readable.from(pieces),
  });
  return { status: response.statusCode, json: (await response.body.json()) as Record<string, { id: string; meta: Record<string, string> }> & { code?: string } };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('current upload (§3.10)', () => {
  test('multipart upload returns meta with sha256; documents are PROCESSING, then SUCCESS; chat cites the file', async () => {
    const bytes = Buffer.from('%PDF-1.4 simulated 文档\n'.repeat(200));
    const uploaded = await upload('report.pdf', 'application/pdf', bytes);
    assert.equal(uploaded.status, 200);
    const { id, meta } = uploaded.json.file;
    assert.deepEqual([meta.name, meta.sizeBytes, meta.checksum, meta.type], ['report.pdf', String(bytes.length), sha256(bytes), 'FILE_TYPE_DOCUMENT']);
    const early = await postJson(simulator.url, PROGRESS, { file_ids: [id] }, account.accessToken);
    assert.deepEqual(early.json.progresses, [{ fileId: id, status: 'PROCESS_STATUS_PROCESSING' }]);
    const refused = await postChat(simulator.url, account.accessToken, chatBody('too early', { fileIds: [id] }));
    assert.equal(refused.status, 400, 'a file block must reference a parsed file');
    now += 300;
    const ready = await postJson(simulator.url, PROGRESS, { file_ids: [id] }, account.accessToken);
    assert.equal((ready.json.progresses as { status: string }[])[0].status, 'PROCESS_STATUS_SUCCESS');

    const chat = await postChat(simulator.url, account.accessToken, chatBody('summarise', { fileIds: [id] }));
    assert.ok(chat.events.some((event) => event.mask === 'chat.files'));
    const expected = simulatedReply({ userText: 'summarise', turn: 1, files: [{ name: 'report.pdf', sizeBytes: bytes.length, sha256: sha256(bytes) }] });
    assert.equal(answerText(chat.events), expected.text);
    assert.match(expected.text, new RegExp(`File: report\\.pdf \\(${bytes.length} bytes, sha256 ${sha256(bytes).slice(0, 12)}\\)`));
    assert.equal(simulator.files(account.userId).find((file) => file.id === id)?.status, 'success');
  });

  test('images are ready at once; other users cannot reference the file', async () => {
    const image = await upload('a.png', 'image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    assert.equal(image.json.file.meta.type, 'FILE_TYPE_IMAGE');
    const progress = await postJson(simulator.url, PROGRESS, { file_ids: [image.json.file.id] }, account.accessToken);
    assert.equal((progress.json.progresses as { status: string }[])[0].status, 'PROCESS_STATUS_SUCCESS');
    const stranger = simulator.issueAccount();
    assert.equal((await postChat(simulator.url, stranger.accessToken, chatBody('x', { fileIds: [image.json.file.id] }))).status, 400);
  });

  test('too-large uploads, upload-rejected, upload-forbidden and parse-failed', async () => {
    const big = await upload('big.bin', 'application/octet-stream', Buffer.alloc(65 * 1024));
    assert.deepEqual([big.status, big.json.code], [400, 'invalid_argument']);
    simulator.setScenario('upload-rejected', { userId: account.userId, times: 1 });
    assert.equal((await upload('x.txt', 'text/plain', Buffer.from('x'))).status, 500);
    simulator.setScenario('upload-forbidden', { userId: account.userId, times: 1 });
    assert.equal((await upload('x.txt', 'text/plain', Buffer.from('x'))).status, 403);
    simulator.setScenario('parse-failed', { userId: account.userId, times: 1 });
    const failing = await upload('bad.png', 'image/png', Buffer.from('not really a png'));
    const progress = await postJson(simulator.url, PROGRESS, { file_ids: [failing.json.file.id] }, account.accessToken);
    assert.equal((progress.json.progresses as { status: string }[])[0].status, 'PROCESS_STATUS_FAILED');
  });
});

describe('legacy upload (§2.3)', () => {
  test('pre-sign-url → PUT → /api/file → parse_process, then refs in a completion', async () => {
    const legacy = await getJson(simulator.url, '/api/auth/token/refresh', account.legacyRefreshToken);
    const token = String(legacy.json.access_token);
    const signed = await postJson(simulator.url, '/api/pre-sign-url', { action: 'file', name: 'notes.txt' }, token);
    const url = new URL(String(signed.json.url));
    assert.equal(url.origin, simulator.url);
    const bytes = Buffer.from('legacy notes 笔记');
    const put = await request(url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: bytes });
    await put.body.dump();
    assert.equal(put.statusCode, 200);
    const file = await postJson(simulator.url, '/api/file', { type: 'file', name: 'notes.txt', object_name: signed.json.object_name, file_id: '', chat_id: '' }, token);
    assert.deepEqual([file.json.status, file.json.size], ['initialized', bytes.length]);
    let answered = false;
    const parsing = postJson(simulator.url, '/api/file/parse_process', { ids: [file.json.id], timeout: 120000 }, token).finally(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(answered, false, 'held open while the document is still being parsed');
    now += 300;
    assert.equal((await parsing).json.status, 'parsed');
    const chat = await postJson(simulator.url, '/api/chat', { name: 'x' }, token);
    const completion = await postLegacyCompletion(simulator.url, token, String(chat.json.id), { messages: [{ role: 'user', content: 'read it' }], refs: [file.json.id] });
    const text = completion.events.filter((event) => event.event === 'cmpl').map((event) => String(event.text)).join('');
    assert.match(text, new RegExp(`File: notes\\.txt \\(${bytes.length} bytes, sha256 ${sha256(bytes).slice(0, 12)}\\)`));
  });
});
