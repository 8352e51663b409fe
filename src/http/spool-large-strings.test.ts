/**
 * The attachment-string scanner (issue 4, memory): large base64 strings under attachment keys leave the JSON
 * text for the spool with their escapes undone, at every chunk split; everything else is kept byte for byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttachmentError, GatewayError } from '../errors.ts';
import { classifySpoolPrefix, createLargeStringScanner, type ScanEvent } from './spool-large-strings.ts';

interface Spooled {
  mediaType: string | undefined;
  isDataUrl: boolean;
  data: string;
}

/** Runs the scanner over `chunks` and rebuilds what the caller would keep: text with `kfa-spool:N` markers. */
function scan(chunks: Uint8Array[], thresholdBytes: number): { text: string; spooled: Spooled[] } {
  const scanner = createLargeStringScanner({ thresholdBytes });
  const text: Uint8Array[] = [];
  const spooled: Spooled[] = [];
  let open: { entry: Spooled; parts: Uint8Array[] } | undefined;
  const apply = (events: ScanEvent[]) => {
    for (const event of events) {
      if (event.type === 'text') {
        assert.equal(open, undefined, 'no text while a string is diverted');
        text.push(Buffer.from(event.bytes)); // copied: the scanner may hand on views of the chunk
      } else if (event.type === 'spool-start') {
        open = { entry: { mediaType: event.mediaType, isDataUrl: event.isDataUrl, data: '' }, parts: [] };
        text.push(Buffer.from(`kfa-spool:${spooled.length}`));
      } else if (event.type === 'spool-data') {
        assert.ok(open, 'spool data only after a start');
        open.parts.push(Buffer.from(event.bytes));
      } else {
        assert.ok(open, 'an end only after a start');
        open.entry.data = Buffer.concat(open.parts).toString('latin1');
        spooled.push(open.entry);
        open = undefined;
      }
    }
  };
  for (const chunk of chunks) apply(scanner.push(chunk));
  apply(scanner.end());
  return { text: Buffer.concat(text).toString('utf8'), spooled };
}

/** Replaces each marker with the string it stands for, as the attachment opener will. */
function restore(value: unknown, spooled: Spooled[]): unknown {
  if (typeof value === 'string') {
    const match = /^kfa-spool:(\d+)$/.exec(value);
    if (!match) return value;
    const entry = spooled[Number(match[1])];
    return entry.isDataUrl ? `data:${entry.mediaType};base64,${entry.data}` : entry.data;
  }
  if (Array.isArray(value)) return value.map((item) => restore(item, spooled));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, restore(item, spooled)]));
  }
  return value;
}

function base64Of(length: number, seed: number): string {
  const bytes = Buffer.alloc(length);
  for (let index = 0; index < length; index += 1) bytes[index] = (index * 131 + seed * 17 + (index >> 3)) & 0xff;
  return bytes.toString('base64');
}

const threshold = 64;
const png = base64Of(300, 1);
const pdf = base64Of(240, 2);
const bare = base64Of(180, 3);
// One body with every case at once: three strings diverted, the rest kept as they are.
const body = [
  '{"model":"kimi","messages":[{"role":"user","content":[',
  '{"type":"text","text":"describe ✓ 笔记 \\"quoted\\" \\\\ \\u00e9"},',
  `{"type":"image_url","image_url":{"url":"data:image/png;base64,${png.replaceAll('/', '\\/')}"}},`,
  `{"type":"file","file":{"filename":"a.pdf","file_data" : "data:application/pdf;base64,${pdf.replaceAll('+', '\\u002B')}"}},`,
  `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"${bare}"}},`,
  `{"type":"text","text":"${base64Of(200, 4)}"},`, // base64 under a key that is not an attachment key
  `{"type":"file","file_url":{"url":"https://example.com/${'a'.repeat(200)}"}},`, // long, not base64
  `{"type":"file","file":{"file_data":"data:text/plain;base64,AAAA"}},`, // under the threshold
  `{"url":["data:image/png;base64,${base64Of(120, 5)}"]}`, // an array element has no key
  ']}]}',
].join('');
const expected = JSON.parse(body);

function check(chunks: Uint8Array[], label: string): void {
  const { text, spooled } = scan(chunks, threshold);
  assert.equal(spooled.length, 3, `${label}: three strings diverted`);
  assert.deepEqual(
    spooled.map((entry) => [entry.mediaType, entry.isDataUrl]),
    [['image/png', true], ['application/pdf', true], [undefined, false]],
    label,
  );
  assert.ok(Buffer.byteLength(text) < Buffer.byteLength(body) - 600, `${label}: the payloads left the text`);
  assert.deepEqual(restore(JSON.parse(text), spooled), expected, label);
}

test('issue 4: large base64 attachment strings are diverted with escapes undone; other strings stay as they were', () => {
  const bytes = Buffer.from(body);
  check([bytes], 'one chunk');
  const { spooled } = scan([bytes], threshold);
  assert.equal(spooled[0].data, png, '\\/ became /');
  assert.equal(spooled[1].data, pdf, '\\u002B became +');
});

test('issue 4: the body split into two chunks at every byte offset gives the same result', () => {
  const bytes = Buffer.from(body);
  for (let offset = 0; offset <= bytes.length; offset += 1) check([bytes.subarray(0, offset), bytes.subarray(offset)], `split at ${offset}`);
});

test('issue 4: one byte per chunk (every escape and quote split) gives the same result', () => {
  const bytes = Buffer.from(body);
  check(Array.from(bytes, (byte) => Uint8Array.of(byte)), 'byte by byte');
  const threes: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += 3) threes.push(bytes.subarray(offset, offset + 3));
  check(threes, 'three bytes per chunk');
});

test('issue 4: a non-ASCII escape inside a diverted payload is attachment_invalid, a bad escape is invalid_json', () => {
  const start = `{"url":"data:image/png;base64,${base64Of(120, 6)}`;
  const nonAscii = Buffer.from(`${start}\\u00e9AAA"}`);
  assert.throws(() => scan([nonAscii], threshold), (error: unknown) => error instanceof AttachmentError && error.code === 'attachment_invalid');
  const badEscape = Buffer.from(`${start}\\xAAA"}`);
  assert.throws(() => scan([badEscape], threshold), (error: unknown) => error instanceof GatewayError && error.code === 'invalid_json');
  // Before the threshold the same escapes only mean "not base64": the string stays in the text.
  const early = Buffer.from(`{"url":"data:image/png;base64,\\u00e9${base64Of(120, 6)}"}`);
  const kept = scan([early], threshold);
  assert.equal(kept.spooled.length, 0);
  assert.equal(kept.text, early.toString());
});

test('issue 4: ASCII escapes past the threshold are undone and left to base64 validation (a \\n reaches the spool)', () => {
  const payload = base64Of(120, 7);
  const { text, spooled } = scan([Buffer.from(`{"data":"${payload}\\nAAAA"}`)], threshold);
  assert.equal(spooled.length, 1);
  assert.equal(spooled[0].data, `${payload}\nAAAA`);
  assert.deepEqual(JSON.parse(text), { data: 'kfa-spool:0' });
});

test('issue 4: a body that ends inside a held string gives its bytes back as text (JSON.parse then refuses it)', () => {
  const cut = Buffer.from('{"url":"data:image/png;base64,AAAA');
  const { text, spooled } = scan([cut], threshold);
  assert.equal(spooled.length, 0);
  assert.equal(text, cut.toString());
});

test('issue 4: the data URL header follows files/data-url.ts: base64 only, a well-formed media type', () => {
  const payload = 'A'.repeat(80);
  assert.deepEqual(classifySpoolPrefix(`data:image/png;base64,${payload}`), { mediaType: 'image/png', isDataUrl: true, payloadStart: 22 });
  assert.deepEqual(classifySpoolPrefix(`DATA:;name=a.pdf;BASE64,${payload}`), { mediaType: undefined, isDataUrl: true, payloadStart: 24 });
  assert.equal(classifySpoolPrefix(`data:text/plain,${payload}`), undefined, 'not base64');
  assert.equal(classifySpoolPrefix(`data:image png;base64,${payload}`), undefined, 'malformed type');
  assert.equal(classifySpoolPrefix(`data:image/png;base64,${payload} x`), undefined, 'a space is not base64');
  assert.deepEqual(classifySpoolPrefix(payload), { mediaType: undefined, isDataUrl: false, payloadStart: 0 });
  assert.equal(classifySpoolPrefix(`${payload}=`), undefined, 'padding inside the first characters is not a long payload');
});
