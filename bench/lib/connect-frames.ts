/**
 * @module bench/lib/connect-frames
 * A minimal incremental Connect envelope decoder (1 flag byte, 4-byte big-endian length, payload) for the
 * benchmark's clients, tap and re-encoding reference. Independent of src/ on purpose: the references must
 * not share the gateway's code.
 */

export interface Frame {
  flags: number;
  payload: Buffer;
}

export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);

  /** Feeds one read; returns every frame it completed (possibly none). */
  push(chunk: Buffer): Frame[] {
    const buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (buffer.length - offset >= 5) {
      const length = buffer.readUInt32BE(offset + 1);
      if (buffer.length - offset - 5 < length) break;
      frames.push({ flags: buffer[offset], payload: buffer.subarray(offset + 5, offset + 5 + length) });
      offset += 5 + length;
    }
    this.#pending = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset);
    return frames;
  }
}

/** The text a Chat event adds to the answer (`set block.text` / `append block.text.content`), if any. */
export function answerTextOf(event: { op?: string; mask?: string; block?: { text?: { content?: unknown } } }): string | undefined {
  if (event.mask !== 'block.text' && event.mask !== 'block.text.content') return undefined;
  const content = event.block?.text?.content;
  return typeof content === 'string' ? content : undefined;
}

/** Builds the one-envelope Chat request body the simulator (and Kimi) expects (spec §3.2, §3.5). */
export function chatRequestEnvelope(text: string): Buffer {
  const body = Buffer.from(
    JSON.stringify({
      scenario: 'SCENARIO_CHAT',
      message: { role: 'user', blocks: [{ text: { content: text } }], scenario: 'SCENARIO_CHAT' },
      options: { thinking: false, enable_plugin: true },
    }),
  );
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}
