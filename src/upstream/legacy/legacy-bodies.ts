/**
 * @module upstream/legacy/legacy-bodies
 * The JSON bodies the legacy dialect sends (create chat, completion, continuation; protocol spec §2.3, §2.4,
 * §9 D5, D6) and the static legacy model catalogue. Pure functions.
 */
import type { CatalogModel, KimiPrompt, ModelChoice } from '../dialect.ts';
import { refsFileEntry } from './legacy-upload.ts';

/** The kimi+ agent id of the k1 thinking model (Dec 2024, §2.4). */
export const k1KimiplusId = 'crm40ee9e5jvhsn7ptcg';

/** Legacy kimi+ ids are `kimi` or a 20-char xid (§2.3); current-dialect agents such as `ok-computer` are not. */
const legacyKimiplusIdPattern = /^(kimi|[0-9a-z]{20})$/;

/**
 * The kimi+ agent a turn runs under: the model's legacy agent id, else k1 for thinking, else plain `kimi`.
 * The same id is used to create the chat and to complete in it, since a web chat belongs to one agent.
 */
export function kimiplusIdFor(model: ModelChoice): string {
  if (model.kimiplusId && legacyKimiplusIdPattern.test(model.kimiplusId)) return model.kimiplusId;
  return model.thinking ? k1KimiplusId : 'kimi';
}

/** `POST /api/chat` (§2.3 with the 2025 fields of §9 D5). */
export function createChatBody(kimiplusId: string): Record<string, unknown> {
  return {
    name: '未命名会话',
    is_example: false,
    enter_method: 'new_chat',
    kimiplus_id: kimiplusId,
    born_from: 'home',
    source: 'web',
    tags: [],
  };
}

/**
 * `POST /api/chat/{id}/completion/stream` (§2.4). Only the first message is honoured upstream, so the prompt
 * (already flattened by the chat layer) is the single user message. The 2025 `model` field of §9 D6 is not
 * sent: ModelChoice.upstreamModel holds current-dialect ids (`k2d6-chat`) that the legacy host never knew.
 */
export function completionBody(prompt: KimiPrompt, kimiplusId: string): Record<string, unknown> {
  const model = prompt.model;
  return {
    kimiplus_id: kimiplusId,
    messages: [{ role: 'user', content: prompt.text }],
    refs: prompt.files.map((file) => file.id),
    refs_file: prompt.files.map(refsFileEntry),
    use_search: model.search || model.silentSearch,
    use_research: model.research ?? false,
    use_math: model.math ?? false,
    extend: { sidebar: true },
  };
}

/** The body that asks for the rest of an answer cut by `length` (§2.4). */
export function continuationBody(segmentId: string, kimiplusId: string): Record<string, unknown> {
  return {
    segment_id: segmentId,
    action: 'continue',
    messages: [{ role: 'user', content: ' ' }],
    kimiplus_id: kimiplusId,
    extend: { sidebar: true },
  };
}

/** The legacy host has no model listing; these are the switches the 2024 web app offered (§1, §2.4). */
export const legacyModelCatalog: readonly CatalogModel[] = Object.freeze([
  { id: 'kimi', displayName: 'Kimi', kimiplusId: 'kimi', thinking: false },
  { id: 'kimi-search', displayName: 'Kimi with web search', kimiplusId: 'kimi', thinking: false },
  { id: 'kimi-k1', displayName: 'Kimi k1 (thinking)', kimiplusId: k1KimiplusId, thinking: true },
  { id: 'kimi-research', displayName: 'Kimi research', kimiplusId: 'kimi', thinking: false },
  { id: 'kimi-math', displayName: 'Kimi math', kimiplusId: 'kimi', thinking: false },
]);
