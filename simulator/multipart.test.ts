// The streaming multipart parser (RFC 7578) used by the §3.10 upload route: every split position, odd parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundaryOf, dispositionOf, MultipartError, MultipartParser } from './multipart.ts';

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

function parse(chunks: Buffer[], boundary: string): Part[] {
  const parts: Part[] = [];
  let current: Buffer[] = [];
  const parser = new MultipartParser(boundary, {
    onPartStart: (headers) => {
      parts.push({ headers, body: Buffer.alloc(0) });
      current = [];
    },
    onPartData: (chunk) => current.push(Buffer.from(chunk)),
    onPartEnd: () => {
      parts[parts.length - 1].body = Buffer.concat(current);
    },
  });
  for (const chunk of chunks) parser.write(chunk);
  parser.end();
  return parts;
}

const boundary = '----sim7MA4YWxkTrZu0gW';
const payload = Buffer.concat([Buffer.from('line one\r\n--not-the-boundary\r\n'), Buffer.from([0, 255, 13, 10, 45, 45]), Buffer.from('中文 🌏')]);
const body = Buffer.concat([
  Buffer.from(`preamble to ignore\r\n--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nchat\r\n`),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".pdf"\r\nContent-Type: application/pdf\r\n\r\n`),
  payload,
  Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="empty"\r\n\r\n\r\n--${boundary}--\r\nepilogue`),
]);

test('parses parts identically whatever the chunk boundaries (split at every byte offset)', () => {
  const whole = parse([body], boundary);
  assert.equal(whole.length, 3);
  assert.deepEqual(whole[1].body, payload);
  assert.equal(whole[0].body.toString(), 'chat');
  assert.equal(whole[2].body.length, 0);
  assert.equal(whole[1].headers['content-type'], 'application/pdf');
  for (let cut = 1; cut < body.length; cut += 1) {
    const split = parse([body.subarray(0, cut), body.subarray(cut)], boundary);
    assert.deepEqual(split.map((part) => part.body), whole.map((part) => part.body), `split at ${cut}`);
  }
  const byteByByte = parse([...body].map((byte) => Buffer.from([byte])), boundary);
  assert.deepEqual(byteByByte[1].body, payload);
});

test('a body without the closing boundary is an error', () => {
  assert.throws(() => parse([body.subarray(0, body.length - 20)], boundary), MultipartError);
});

test('boundary and Content-Disposition parameters', () => {
  assert.equal(boundaryOf('multipart/form-data; boundary=abc'), 'abc');
  assert.equal(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b"'), 'a b');
  assert.equal(boundaryOf('application/json'), undefined);
  assert.deepEqual(dispositionOf('form-data; name="file"; filename="a \\"b\\".pdf"'), { name: 'file', filename: 'a "b".pdf' });
  assert.deepEqual(dispositionOf("form-data; name=file; filename=x.txt; filename*=UTF-8''%E6%96%87.txt"), { name: 'file', filename: '文.txt' });
});
