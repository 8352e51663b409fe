import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamError } from '../../errors.ts';
import { ConnectFrameDecoder, encodeEnvelope, endStreamFlag, type ConnectFrame } from './connect-framing.ts';

const decode = (frames: ConnectFrame[]) =>
  frames.map((frame) => ({ end: frame.isEndStream, json: Buffer.from(frame.payload).toString('utf8') }));

function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

describe('connect framing (§3.2)', () => {
  it('encodes flag, big-endian byte length and UTF-8 payload', () => {
    const bytes = encodeEnvelope('{"a":"é"}');
    assert.deepEqual([...bytes.subarray(0, 5)], [0, 0, 0, 0, 10]);
    assert.equal(Buffer.from(bytes.subarray(5)).toString('utf8'), '{"a":"é"}');
    assert.equal(encodeEnvelope('{}', endStreamFlag)[0], 2);
  });

  it('decodes the same frames whatever single offset the bytes are split at', () => {
    const stream = concat(
      encodeEnvelope('{"heartbeat":{}}'),
      encodeEnvelope('{"block":{"text":{"content":"北京 🛠 x"}}}'),
      encodeEnvelope(''),
      encodeEnvelope('{}', endStreamFlag),
    );
    const expected = [
      { end: false, json: '{"heartbeat":{}}' },
      { end: false, json: '{"block":{"text":{"content":"北京 🛠 x"}}}' },
      { end: false, json: '' },
      { end: true, json: '{}' },
    ];
    for (let offset = 0; offset <= stream.length; offset += 1) {
      const decoder = new ConnectFrameDecoder();
      const frames = [...decoder.push(stream.subarray(0, offset)), ...decoder.push(stream.subarray(offset))];
      assert.deepEqual(decode(frames), expected, `split at ${offset}`);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  it('decodes byte by byte and at every pair of split offsets', () => {
    const stream = concat(encodeEnvelope('{"x":"ü€😀"}'), encodeEnvelope('{"y":1}'), encodeEnvelope('{}', 2));
    const oneByOne = new ConnectFrameDecoder();
    const frames: ConnectFrame[] = [];
    for (const byte of stream) frames.push(...oneByOne.push(Uint8Array.of(byte)));
    const expected = decode(new ConnectFrameDecoder().push(stream));
    assert.deepEqual(decode(frames), expected);
    for (let first = 0; first <= stream.length; first += 1) {
      for (let second = first; second <= stream.length; second += 1) {
        const decoder = new ConnectFrameDecoder();
        const got = [
          ...decoder.push(stream.subarray(0, first)),
          ...decoder.push(stream.subarray(first, second)),
          ...decoder.push(stream.subarray(second)),
        ];
        assert.deepEqual(decode(got), expected, `split at ${first}/${second}`);
      }
    }
  });

  it('reports a partial frame through bufferedBytes (truncation at transport end)', () => {
    const decoder = new ConnectFrameDecoder();
    const frame = encodeEnvelope('{"done":{}}');
    assert.deepEqual(decoder.push(frame.subarray(0, 3)), []);
    assert.equal(decoder.bufferedBytes, 3);
    assert.deepEqual(decoder.push(frame.subarray(3, 8)), []);
    assert.equal(decoder.bufferedBytes, 8);
  });

  it('rejects compressed frames (flag 0x01) with a typed error', () => {
    const frame = encodeEnvelope('{}', 0x01);
    assert.throws(() => new ConnectFrameDecoder().push(frame), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, /compressed/);
      return true;
    });
  });

  it('hands out the frames before a bad header, then throws (decode appends to the caller\'s list)', () => {
    const frames: ConnectFrame[] = [];
    const bytes = concat(encodeEnvelope('{"a":1}'), encodeEnvelope('{"b":2}'), encodeEnvelope('{}', 0x01), encodeEnvelope('{"c":3}'));
    assert.throws(() => new ConnectFrameDecoder().decode(bytes, frames), /compressed/);
    assert.deepEqual(decode(frames), [{ end: false, json: '{"a":1}' }, { end: false, json: '{"b":2}' }]);
  });

  it('copies only frames split across chunks; a frame inside one chunk is a view of it', () => {
    const chunk = Buffer.from(concat(encodeEnvelope('{"a":1}'), encodeEnvelope('{"b":2}').subarray(0, 7)));
    const decoder = new ConnectFrameDecoder();
    const [whole] = decoder.push(chunk);
    const [split] = decoder.push(encodeEnvelope('{"b":2}').subarray(7));
    chunk.fill(0x20);
    assert.equal(Buffer.from(whole.payload).toString(), ' '.repeat(7), 'a view sees the chunk change');
    assert.equal(Buffer.from(split.payload).toString(), '{"b":2}', 'a copy does not');
  });

  it('rejects unknown flag bits such as 0x80', () => {
    assert.throws(() => new ConnectFrameDecoder().push(encodeEnvelope('{}', 0x80)), /unknown flags 0x80/);
  });

  it('rejects an absurd length before buffering it', () => {
    const header = Uint8Array.of(0, 0x7f, 0xff, 0xff, 0xff);
    assert.throws(() => new ConnectFrameDecoder().push(header), /above the 16777216-byte limit/);
    assert.throws(() => new ConnectFrameDecoder(10).push(encodeEnvelope('{"a":"12345"}')), /above the 10-byte limit/);
  });
});
