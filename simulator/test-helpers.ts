/**
 * @module simulator/test-helpers
 * Test-only helpers: a tiny incremental Connect envelope decoder (independent of both the simulator's encoder
 * and the gateway's decoder), and small clients for Chat, unary RPCs and SSE over real loopback sockets.
 */
import { request } from 'undici';

export interface Frame {
  flags: number;
  text: string;
}

/** Buffers bytes until whole envelopes (5-byte header + payload) are present (spec §3.2). */
export class FrameDecoder {
  #pending = Buffer.alloc(0);
  readonly frames: Frame[] = [];

  push(chunk: Uint8Array): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 5) {
      const length = this.#pending.readUInt32BE(1);
      if (this.#pending.length < 5 + length) break;
      this.frames.push({ flags: this.#pending[0], text: this.#pending.subarray(5, 5 + length).toString('utf8') });
      this.#pending = this.#pending.subarray(5 + length);
    }
  }

  get pendingBytes(): number {
    return this.#pending.length;
  }
}

export function envelope(value: unknown): Buffer {
  const body = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

export function chatBody(text: string, extra: { chatId?: string; parentId?: string; thinking?: boolean; search?: boolean; fileIds?: string[] } = {}): Record<string, unknown> {
  return {
    ...(extra.chatId === undefined ? {} : { chat_id: extra.chatId }),
    scenario: 'SCENARIO_CHAT',
    tools: extra.search ? [{ type: 'TOOL_TYPE_SEARCH', search: {} }] : [],
    message: {
      ...(extra.parentId === undefined ? {} : { parent_id: extra.parentId }),
      role: 'user',
      blocks: [{ message_id: '', text: { content: text } }, ...(extra.fileIds ?? []).map((id) => ({ file: { id } }))],
      scenario: 'SCENARIO_CHAT',
    },
    options: { thinking: extra.thinking ?? false },
  };
}

export interface ChatResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  frames: Frame[];
  /** Parsed data-frame payloads (non-JSON frames become `{ unparsable: text }`). */
  events: Record<string, unknown>[];
  /** Parsed flag-0x02 payload, when one arrived. */
  end?: Record<string, unknown>;
  bodyText: string;
  reads: number;
  leftoverBytes: number;
}

export async function postChat(baseUrl: string, token: string, body: unknown, options: { raw?: Buffer; signal?: AbortSignal } = {}): Promise<ChatResponse> {
  const response = await request(`${baseUrl}/apiv2/kimi.gateway.chat.v1.ChatService/Chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/connect+json', 'connect-protocol-version': '1' },
    body: options.raw ?? envelope(body),
    signal: options.signal,
  });
  const decoder = new FrameDecoder();
  const raw: Buffer[] = [];
  let reads = 0;
  for await (const chunk of response.body) {
    reads += 1;
    raw.push(chunk);
    decoder.push(chunk);
  }
  const parse = (text: string): Record<string, unknown> => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      return { unparsable: text };
    }
  };
  const endFrame = decoder.frames.find((frame) => frame.flags === 2);
  return {
    status: response.statusCode,
    headers: response.headers,
    frames: decoder.frames,
    events: decoder.frames.filter((frame) => frame.flags === 0).map((frame) => parse(frame.text)),
    end: endFrame ? parse(endFrame.text) : undefined,
    bodyText: Buffer.concat(raw).toString('utf8'),
    reads,
    leftoverBytes: decoder.pendingBytes,
  };
}

/** Joins the answer text of `block.text` set/append events (the rule of spec §3.6). */
export function answerText(events: Record<string, unknown>[]): string {
  let text = '';
  for (const event of events) {
    const block = event.block as { text?: { content?: string } } | undefined;
    if (block?.text?.content !== undefined && (event.mask === 'block.text' || event.mask === 'block.text.content')) text += block.text.content;
  }
  return text;
}

export async function postJson(baseUrl: string, path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }> {
  const response = await request(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers };
}

export async function getJson(baseUrl: string, path: string, token?: string, method: 'GET' | 'DELETE' = 'GET'): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await request(`${baseUrl}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Posts a legacy completion and returns the SSE payloads plus whether any read split a UTF-8 character. */
export async function postLegacyCompletion(baseUrl: string, token: string, chatId: string, body: unknown): Promise<{ status: number; events: Record<string, unknown>[]; bodyText: string; splitUtf8Reads: number; contentType: string }> {
  const response = await request(`${baseUrl}/api/chat/${chatId}/completion/stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const chunks: Buffer[] = [];
  let splitUtf8Reads = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    if (endsInsideUtf8Character(chunk)) splitUtf8Reads += 1;
  }
  const bodyText = Buffer.concat(chunks).toString('utf8');
  const events = bodyText
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => {
      try {
        return JSON.parse(block.slice(6)) as Record<string, unknown>;
      } catch {
        return { unparsable: block.slice(6) };
      }
    });
  return { status: response.statusCode, events, bodyText, splitUtf8Reads, contentType: String(response.headers['content-type']) };
}

/** True when the chunk's last bytes are an incomplete UTF-8 sequence. */
export function endsInsideUtf8Character(chunk: Buffer): boolean {
  for (let back = 1; back <= Math.min(3, chunk.length); back += 1) {
    const byte = chunk[chunk.length - back];
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    if (byte < 0x80) return false;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
    return back < needed;
  }
  return false;
}
