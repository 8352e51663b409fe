/**
 * @module simulator/drift
 * Protocol-drift scenarios (issue 10): the kinds of change Kimi could make tomorrow, each one breaking one step
 * of the gateway's `doctor` — a renamed event, a renamed field, a new required header, a moved Chat endpoint and a
 * moved refresh RPC. Each is a named scenario; chat-route.ts and auth-routes.ts call the two hooks below.
 */
import type { ScriptItem } from './chat-script.ts';
import { sendConnectError, type RouteContext } from './http-io.ts';
import type { RequestKind } from './scenarios.ts';

/** The header `drift-required-header` insists on. */
export const NEW_REQUIRED_HEADER = 'x-msh-new-header';

const CHAT: RequestKind[] = ['chat'];

/** Drift scenarios, merged into SCENARIOS (scenarios.ts); the README table lists them. */
export const DRIFT_SCENARIOS = {
  'drift-renamed-event': { kinds: CHAT, description: 'Answer frames use `block.content` (mask `block.content` / `block.content.content`) instead of `block.text` (§3.6).' },
  'drift-renamed-field': { kinds: CHAT, description: 'The chat event carries `chat.chatId` instead of `chat.id` (§3.6, §3.8); everything else normal.' },
  'drift-required-header': { kinds: CHAT, description: `Chat without an \`${NEW_REQUIRED_HEADER}\` header → HTTP 400 invalid_argument "missing header" (§3.3).` },
  'drift-moved-endpoint': { kinds: CHAT, description: 'Chat answers HTTP 404 `unimplemented` at its documented path (§3.5), as if it moved.' },
  'drift-refresh-moved': { kinds: ['refresh'], description: 'The account-service RefreshToken RPC answers HTTP 404 (§3.4); the web GET refresh still works.' },
} as const satisfies Record<string, { kinds: readonly RequestKind[]; description: string }>;

export type DriftScenarioName = keyof typeof DRIFT_SCENARIOS;

/**
 * Chat requests refused by a drift scenario: answers and returns true, or returns false to let the turn run.
 * Called once the scenario of the request is known.
 */
export function answerChatDrift(context: RouteContext, scenario: string): boolean {
  if (scenario === 'drift-moved-endpoint') {
    sendConnectError(context.res, 'unimplemented', `no route for POST ${context.url.pathname}`, undefined, 404);
    return true;
  }
  if (scenario === 'drift-required-header' && !context.req.headers[NEW_REQUIRED_HEADER]) {
    sendConnectError(context.res, 'invalid_argument', `missing header ${NEW_REQUIRED_HEADER}`);
    return true;
  }
  return false;
}

/** The refresh RPC under `drift-refresh-moved`: 404 as for any unknown route. Returns true when it answered. */
export function answerRefreshDrift(context: RouteContext, scenario: string | undefined): boolean {
  if (scenario !== 'drift-refresh-moved') return false;
  sendConnectError(context.res, 'unimplemented', `no route for POST ${context.url.pathname}`, undefined, 404);
  return true;
}

/** Rewrites the event script of a Chat turn for the renamed-event and renamed-field scenarios. */
export function driftChatItems(items: ScriptItem[], scenario: string): ScriptItem[] {
  if (scenario === 'drift-renamed-event') return items.map(renameTextBlock);
  if (scenario === 'drift-renamed-field') return items.map(renameChatId);
  return items;
}

function renameTextBlock(item: ScriptItem): ScriptItem {
  if (item.kind !== 'data') return item;
  const block = item.value.block as Record<string, unknown> | undefined;
  if (!block || !('text' in block)) return item;
  const { text, ...rest } = block;
  const mask = typeof item.value.mask === 'string' ? item.value.mask.replace(/^block\.text/, 'block.content') : item.value.mask;
  return { kind: 'data', value: { ...item.value, ...(mask === undefined ? {} : { mask }), block: { ...rest, content: text } } };
}

function renameChatId(item: ScriptItem): ScriptItem {
  if (item.kind !== 'data') return item;
  const chat = item.value.chat as Record<string, unknown> | undefined;
  if (!chat || !('id' in chat)) return item;
  const { id, ...rest } = chat;
  return { kind: 'data', value: { ...item.value, chat: { chatId: id, ...rest } } };
}
