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

/**
 * Streaming decoder: add byte chunks, get complete frames back. A frame inside one chunk costs one `subarray`
 * (no copy); only a frame split across chunks is copied, once, when its last byte arrives.
 */
export class ConnectFrameDecoder {
  readonly #maxFrameBytes: number;
  /** The start of a frame still incomplete (header included), in arrival order. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Header plus payload of the incomplete frame once its header is known; 0 before. */
  #partialFrameBytes = 0;

  constructor(maxFrameBytes: number = defaultMaxFrameBytes) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame (non-zero at transport end means truncation). */
  get bufferedBytes(): number {
    return this.#partialBytes;
  }

  push(chunk: Uint8Array): ConnectFrame[] {
    const frames: ConnectFrame[] = [];
    this.decode(chunk, frames);
    return frames;
  }

  /**
   * Adds `chunk` and appends every frame it completes to `into`. A bad frame header throws after the frames
   * before it were appended, so what arrived intact still reaches the client before the error.
   */
  decode(chunk: Uint8Array, into: ConnectFrame[]): void {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#partialBytes > 0) {
      const rest = this.#completePartial(bytes, into);
      if (rest === undefined) return;
      bytes = rest;
    }
    let offset = 0;
    while (bytes.length - offset >= headerBytes) {
      const { flags, length } = parseHeader(bytes, offset, this.#maxFrameBytes);
      const end = offset + headerBytes + length;
      if (end > bytes.length) {
        this.#partialFrameBytes = headerBytes + length;
        break;
      }
      into.push({ isEndStream: (flags & endStreamFlag) !== 0, payload: bytes.subarray(offset + headerBytes, end) });
      offset = end;
    }
    if (offset < bytes.length) {
      this.#partial.push(bytes.subarray(offset));
      this.#partialBytes = bytes.length - offset;
    }
  }

  /** Feeds the incomplete frame from the front of `bytes`; returns what is left after it completes, or undefined. */
  #completePartial(bytes: Buffer, into: ConnectFrame[]): Buffer | undefined {
    let used = 0;
    if (this.#partialFrameBytes === 0) {
      used = Math.min(headerBytes - this.#partialBytes, bytes.length);
      this.#addPartial(bytes.subarray(0, used));
      if (this.#partialBytes < headerBytes) return undefined;
      const header = Buffer.concat(this.#partial, this.#partialBytes);
      this.#partialFrameBytes = headerBytes + parseHeader(header, 0, this.#maxFrameBytes).length;
    }
    const wanted = Math.min(this.#partialFrameBytes - this.#partialBytes, bytes.length - used);
    this.#addPartial(bytes.subarray(used, used + wanted));
    used += wanted;
    if (this.#partialBytes < this.#partialFrameBytes) return undefined;
    const frame = Buffer.concat(this.#partial, this.#partialBytes);
    this.#partial = [];
    this.#partialBytes = 0;
    this.#partialFrameBytes = 0;
    into.push({ isEndStream: (frame[0] & endStreamFlag) !== 0, payload: frame.subarray(headerBytes) });
    return bytes.subarray(used);
  }

  #addPartial(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#partial.push(bytes);
    this.#partialBytes += bytes.length;
  }
}

function parseHeader(bytes: Buffer, offset: number, maxFrameBytes: number): { flags: number; length: number } {
  const flags = bytes[offset];
  const length = bytes.readUInt32BE(offset + 1);
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
