/**
 * Spooled base64 attachments (issue 4, memory): decoded from the temporary file exactly as Buffer.from would
 * decode the string, strict base64, the cap checked from the text length before any reading, magic-byte
 * types, a body that can be read twice, and placeholders that only this request's registry resolves.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AttachmentError } from '../errors.ts';
import { findSpooledPayload, openSpooledDataUrl, type SpooledPayload } from './open-spooled-data-url.ts';

const folder = mkdtempSync(join(tmpdir(), 'kfa-open-spooled-'));
after(() => rmSync(folder, { recursive: true, force: true }));

let fileCount = 0;
function spooled(text: string, mediaType: string | undefined = 'application/octet-stream'): SpooledPayload {
  const path = join(folder, `payload-${(fileCount += 1)}`);
  writeFileSync(path, text, 'latin1');
  return { path, sizeBytes: Buffer.byteLength(text, 'latin1'), mediaType };
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

/** PNG signature, a 1×1 IHDR and an IDAT chunk header over random bytes: enough for magic-byte detection. */
function pngBytes(length: number): Buffer {
  const head = Buffer.from('89504e470d0a1a0a0000000d494844520000000100000001080200000090773053', 'hex');
  const idat = Buffer.alloc(8);
  idat.writeUInt32BE(length - head.length - 8, 0);
  idat.write('IDAT', 4, 'latin1');
  return Buffer.concat([head, idat, randomBytes(length - head.length - 8)]);
}

function isCode(code: string) {
  return (error: unknown) => error instanceof AttachmentError && error.code === code;
}

test('issue 4: the decoded body equals Buffer.from(base64) for every padding and across read chunks, and reads twice', async () => {
  for (const length of [101, 4100, 4101, 4102, 196_609, 1_000_001]) {
    const bytes = pngBytes(length);
    const payload = spooled(bytes.toString('base64'), 'image/png');
    const opened = await openSpooledDataUrl({ payload, declaredType: 'image/png' }, { kind: 'image', fileNameHint: 'chart.png' });
    assert.equal(opened.sizeBytes, length, `size of ${length}`);
    assert.equal(opened.mediaType, 'image/png');
    assert.equal(opened.fileName, 'chart.png');
    assert.ok((await collect(opened.body)).equals(bytes), `bytes of ${length}`);
    assert.ok((await collect(opened.body)).equals(bytes), `a failover attempt reads ${length} again`);
  }
});

test('issue 4: the type comes from magic bytes, not the declared type; an image part must be an image', async () => {
  const pdf = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1');
  const payload = spooled(pdf.toString('base64'));
  const opened = await openSpooledDataUrl({ payload, declaredType: 'image/png' }, { kind: 'document', ordinal: 7 });
  assert.equal(opened.mediaType, 'application/pdf');
  assert.equal(opened.fileName, 'attachment-7.pdf');
  await assert.rejects(openSpooledDataUrl({ payload, declaredType: 'image/png' }, { kind: 'image' }), isCode('attachment_type_unsupported'));
});

test('issue 4: invalid base64 anywhere in the file is attachment_invalid before any byte is handed on', async () => {
  const good = pngBytes(300_000).toString('base64');
  const middle = good.length >> 1;
  const cases = {
    'a space in the middle': `${good.slice(0, middle)} ${good.slice(middle + 1)}`,
    'a newline near the end': `${good.slice(0, -8)}\n${good.slice(-7)}`,
    'padding in the middle': `${good.slice(0, middle)}=${good.slice(middle + 1)}`,
    'a length not a multiple of 4': good.slice(0, -1),
    'padding then a character': `${good.slice(0, -2)}=A`,
    'a non-ASCII byte': `${good.slice(0, 100)}\xe9${good.slice(101)}`,
  };
  for (const [label, text] of Object.entries(cases)) {
    await assert.rejects(openSpooledDataUrl({ payload: spooled(text), declaredType: undefined }, { kind: 'image' }), isCode('attachment_invalid'), label);
  }
});

test('issue 4: the cap is checked from the text length first (an oversized file is never read) and exactly after', async () => {
  const bytes = pngBytes(10_000); // 10000 = 3·3333 + 1: two padding characters
  const text = bytes.toString('base64');
  assert.ok(text.endsWith('=='));
  // Invalid content but far over the cap: too large wins, so nothing was read to find the invalid byte.
  const oversized = spooled(`${'#'.repeat(text.length)}`);
  await assert.rejects(openSpooledDataUrl({ payload: oversized, declaredType: undefined }, { kind: 'image', maxBytes: 5_000 }), isCode('attachment_too_large'));
  const payload = spooled(text);
  await assert.rejects(openSpooledDataUrl({ payload, declaredType: undefined }, { kind: 'image', maxBytes: 9_999 }), isCode('attachment_too_large'));
  const atCap = await openSpooledDataUrl({ payload, declaredType: undefined }, { kind: 'image', maxBytes: 10_000 });
  assert.equal(atCap.sizeBytes, 10_000);
});

test('issue 4: placeholders resolve only through this request\'s registry, inside a data URL that gives the type hint', () => {
  const image = spooled('AAAA', 'image/png');
  const bare = spooled('AAAA', undefined);
  const registry = new Map([['kfa-spool:image', image], ['kfa-spool:bare', bare]]);
  const spool = { resolve: (placeholder: string) => registry.get(placeholder) };
  assert.equal(findSpooledPayload('https://example.com/a.png', spool), undefined);
  assert.equal(findSpooledPayload('data:image/png;base64,AAAA', spool), undefined);
  assert.deepEqual(findSpooledPayload('data:image/png;base64,kfa-spool:image', spool), { payload: image, declaredType: 'image/png' });
  // What build-prompt.ts and the Responses translator make of bare base64 (and so of a bare placeholder).
  assert.deepEqual(findSpooledPayload('data:application/octet-stream;base64,kfa-spool:bare', spool), { payload: bare, declaredType: 'application/octet-stream' });
  assert.deepEqual(findSpooledPayload('data:;base64,kfa-spool:bare', spool), { payload: bare, declaredType: undefined });
  assert.throws(() => findSpooledPayload('data:image/png;base64,kfa-spool:image', undefined), isCode('attachment_invalid'), 'no registry: nothing resolves');
  assert.throws(() => findSpooledPayload('data:image/png;base64,kfa-spool:forged', spool), isCode('attachment_invalid'));
  assert.throws(() => findSpooledPayload('kfa-spool:bare', spool), isCode('attachment_invalid'), 'bare base64 is not a URL');
  assert.throws(() => findSpooledPayload('data:image png;base64,kfa-spool:bare', spool), isCode('attachment_invalid'), 'malformed type');
});
