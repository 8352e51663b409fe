/**
 * @module upstream/connect/connect-framing
 * Connect envelopes on bytes (protocol spec §3.2): 1 flag byte + 4-byte big-endian length + payload.
 * The decoder buffers until `5 + length` bytes are present, so frames may be split at any byte.
 */
import { UpstreamError } from '../../errors.ts';

export const dataFlag = 0x00;
export const compressedFlag = 0x01;
export const endStreamFlag = 0x02;
const headerBytes = 5;

/** Default cap on one frame: search-result frames are the largest seen and stay far below this. */
export const defaultMaxFrameBytes = 16 * 1024 * 1024;

export interface ConnectFrame {
  isEndStream: boolean;
  payload: Uint8Array;
}

/** One envelope around UTF-8 JSON: what the Chat request body must be (§3.2, bare JSON is rejected). */
export function encodeEnvelope(json: string, flags: number = dataFlag): Uint8Array {
  const payload = Buffer.from(json, 'utf8');
  const frame = Buffer.allocUnsafe(headerBytes + payload.length);
  frame[0] = flags;
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, headerBytes);
  return frame;
}

/** Streaming decoder: push byte chunks, get complete frames back. */
export class ConnectFrameDecoder {
  readonly #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  #header: { flags: number; length: number } | undefined;

  constructor(maxFrameBytes: number = defaultMaxFrameBytes) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame (non-zero at transport end means truncation). */
  get bufferedBytes(): number {
    return this.#bufferedBytes + (this.#header ? headerBytes : 0);
  }

  push(chunk: Uint8Array): ConnectFrame[] {
    return [...this.frames(chunk)];
  }

  /**
   * The complete frames once `chunk` is added, one at a time: a bad frame header throws only after every frame
   * before it was handed out, so what arrived intact still reaches the client before the error.
   */
  *frames(chunk: Uint8Array): Generator<ConnectFrame> {
    if (chunk.length > 0) {
      this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.#bufferedBytes += chunk.length;
    }
    for (;;) {
      if (!this.#header) {
        if (this.#bufferedBytes < headerBytes) return;
        this.#header = parseHeader(this.#take(headerBytes), this.#maxFrameBytes);
      }
      if (this.#bufferedBytes < this.#header.length) return;
      const isEndStream = (this.#header.flags & endStreamFlag) !== 0;
      const frame = { isEndStream, payload: this.#take(this.#header.length) };
      this.#header = undefined;
      yield frame;
    }
  }

  /** Removes exactly `count` bytes from the front; copies only when a frame spans chunks. */
  #take(count: number): Buffer {
    this.#bufferedBytes -= count;
    const first = this.#chunks[0];
    if (first && first.length >= count) {
      if (first.length === count) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[0];
      const used = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}

function parseHeader(header: Buffer, maxFrameBytes: number): { flags: number; length: number } {
  const flags = header[0];
  const length = header.readUInt32BE(1);
  if (flags & compressedFlag) {
    throw new UpstreamError('Kimi sent a compressed Connect frame, which this gateway never asked for (§3.2).');
  }
  if ((flags & ~endStreamFlag) !== 0) {
    throw new UpstreamError(`Kimi sent a Connect frame with unknown flags 0x${flags.toString(16).padStart(2, '0')}.`);
  }
  if (length > maxFrameBytes) {
    throw new UpstreamError(
      `Kimi sent a Connect frame of ${length} bytes, above the ${maxFrameBytes}-byte limit; the stream is not usable.`,
    );
  }
  return { flags, length };
}
