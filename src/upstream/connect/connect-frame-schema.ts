/**
 * @module upstream/connect/connect-frame-schema
 * Lenient zod schemas of `ChatService/Chat` frame payloads (protocol spec §3.6): only fields the mapper
 * reads are named, unknown fields pass through, and a field of the wrong type becomes undefined instead
 * of failing the frame.
 */
import { z } from 'zod';

/** A string field; any other type reads as absent. Shared by every connect schema. */
export const lenientString = z.string().optional().catch(undefined);
/** Ids arrive as strings, sometimes as small integers (§3.6). */
export const lenientId = z.union([z.string(), z.number().transform(String)]).optional().catch(undefined);
const text = lenientString;
const id = lenientId;
const offset = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).optional().catch(undefined);
const content = z.looseObject({ content: text }).optional().catch(undefined);
const searchItem = z
  .looseObject({ refIndex: text, title: text, url: text, siteName: text, snippet: text, base: z.looseObject({ title: text, url: text, siteName: text, snippet: text }).optional().catch(undefined) })
  .catch({});
const searchItems = z.array(searchItem).optional().catch(undefined);
const localized = z.looseObject({ message: text }).optional().catch(undefined);

const blockSchema = z.looseObject({
  id,
  text: content,
  think: content,
  tool: z.looseObject({ status: text, contents: z.array(z.looseObject({ searchResult: searchItem.optional() }).catch({})).optional().catch(undefined) }).optional().catch(undefined),
  search: z.looseObject({ webPages: searchItems }).optional().catch(undefined),
  exception: z.looseObject({ error: z.looseObject({ reason: text, message: text, severity: text, localizedMessage: localized }).optional().catch(undefined) }).optional().catch(undefined),
});
const messageSchema = z.looseObject({
  id,
  role: text,
  status: text,
  refs: z.looseObject({ searchChunks: searchItems, usedSearchChunks: searchItems }).optional().catch(undefined),
});
export const frameSchema = z.looseObject({
  op: text,
  eventOffset: offset,
  heartbeat: z.unknown().optional(),
  done: z.unknown().optional(),
  error: z.unknown().optional(),
  chat: z.looseObject({ id }).optional().catch(undefined),
  message: messageSchema.optional().catch(undefined),
  block: blockSchema.optional().catch(undefined),
  notification: z.looseObject({ type: text, message: text }).optional().catch(undefined),
});
export type Frame = z.infer<typeof frameSchema>;
export type Block = NonNullable<Frame['block']>;
export type SearchItemPayload = z.infer<typeof searchItem>;

/** Top-level keys of a frame (§3.6); any other object-valued key is an unknown container. */
export const knownTopLevel = new Set(['op', 'mask', 'eventOffset', 'heartbeat', 'done', 'error', 'chat', 'message', 'block', 'notification']);
/** Block parts this version reads or knowingly ignores (multiStage, stage). */
export const knownBlockParts = new Set(['text', 'think', 'tool', 'search', 'exception', 'multiStage', 'stage']);
