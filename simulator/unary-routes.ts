/**
 * @module simulator/unary-routes
 * The unary Connect RPCs (plain JSON, spec §3.2, §3.9, §3.4 probes): chats, messages, models, user,
 * subscription. Each handler gets the authenticated account and the JSON body.
 */
import { availableModels } from './model-catalog.ts';
import { field, readJsonObject, requireAccount, sendConnectError, sendJson, type RouteContext, type RouteHandler } from './http-io.ts';
import type { AccountRecord, ChatRecord, MessageRecord } from './state.ts';
import { bearerToken } from './tokens.ts';

type UnaryResult = { body: Record<string, unknown> } | { code: string; message: string };
type UnaryHandler = (context: RouteContext, account: AccountRecord, body: Record<string, unknown>) => UnaryResult;

function unary(handler: UnaryHandler): RouteHandler {
  return async (context) => {
    const account = requireAccount(context, 'connect', bearerToken(context.req.headers.authorization));
    if (!account) return;
    const body = await readJsonObject(context);
    if (!body) return;
    const result = handler(context, account, body);
    if ('code' in result) sendConnectError(context.res, result.code, result.message);
    else sendJson(context.res, 200, result.body);
  };
}

const CHAT_NOT_FOUND = { code: 'not_found', message: 'chat not found' } as const;

function chatOf(context: RouteContext, account: AccountRecord, body: Record<string, unknown>): ChatRecord | undefined {
  const chatId = field(body, 'chat_id', 'chatId');
  return typeof chatId === 'string' ? context.state.findChat(account, chatId) : undefined;
}

const STATUS_NAMES: Record<MessageRecord['status'], string> = {
  generating: 'MESSAGE_STATUS_GENERATING',
  completed: 'MESSAGE_STATUS_COMPLETED',
  failed: 'MESSAGE_STATUS_COMPLETED',
  interrupted: 'MESSAGE_STATUS_COMPLETED',
};

export function messageWire(message: MessageRecord, chat: ChatRecord): Record<string, unknown> {
  const blocks: Record<string, unknown>[] =
    message.role === 'user'
      ? [{ id: 'text_0_0', text: { content: message.text } }, ...message.fileIds.map((id, index) => ({ id: `file_0_${index + 1}`, file: { id } }))]
      : message.status === 'failed'
        ? [{ id: '0_0', exception: { error: { reason: 'REASON_COMPLETION_OVERLOADED', severity: 'SEVERITY_BLOCK_RETRACT' } } }]
        : [{ id: '0_0', text: { content: message.text } }];
  return {
    id: message.id,
    ...(message.parentId ? { parentId: message.parentId } : {}),
    role: message.role,
    status: STATUS_NAMES[message.status],
    blocks,
    createTime: message.createTime,
    childrenMessageIds: chat.messages.filter((other) => other.parentId === message.id).map((other) => other.id),
    refs: {},
    ...(message.scenario ? { scenario: message.scenario } : {}),
  };
}

export function chatWire(chat: ChatRecord): Record<string, unknown> {
  const last = chat.messages.at(-1);
  return {
    id: chat.id,
    name: chat.name,
    createTime: chat.createTime,
    updateTime: chat.updateTime,
    messageContent: last ? last.text.slice(0, 50) : '',
    files: [],
    kimiPlus: {},
    source: 'SOURCE_WEB',
  };
}

const listChats: UnaryHandler = (_context, account, body) => {
  const pageSize = Math.min(Math.max(Number(field(body, 'page_size', 'pageSize')) || 50, 1), 200);
  const start = Number(field(body, 'page_token', 'pageToken')) || 0;
  const live = [...account.chats.values()].filter((chat) => !chat.deleted).reverse();
  const page = live.slice(start, start + pageSize);
  const next = start + pageSize < live.length ? String(start + pageSize) : '';
  return { body: { chats: page.map(chatWire), nextPageToken: next } };
};

const deleteChat: UnaryHandler = (context, account, body) => {
  const chat = chatOf(context, account, body);
  if (!chat) return CHAT_NOT_FOUND;
  chat.deleted = true;
  chat.activeStream?.abort();
  return { body: {} };
};

const batchDeleteChats: UnaryHandler = (context, account, body) => {
  const ids = field(body, 'chat_ids', 'chatIds');
  if (!Array.isArray(ids)) return { code: 'invalid_argument', message: 'chat_ids must be an array' };
  for (const id of ids) {
    const chat = typeof id === 'string' ? context.state.findChat(account, id) : undefined;
    if (chat) chat.deleted = true;
  }
  return { body: {} };
};

const listMessages: UnaryHandler = (context, account, body) => {
  const chat = chatOf(context, account, body);
  if (!chat) return CHAT_NOT_FOUND;
  return { body: { messages: [...chat.messages].reverse().map((message) => messageWire(message, chat)) } };
};

const getChat: UnaryHandler = (context, account, body) => {
  const chat = chatOf(context, account, body);
  return chat ? { body: { chat: chatWire(chat) } } : CHAT_NOT_FOUND;
};

const cancelChat: UnaryHandler = (context, account, body) => {
  const chat = chatOf(context, account, body);
  if (!chat) return CHAT_NOT_FOUND;
  chat.activeStream?.abort();
  return { body: {} };
};

const getCurrentUser: UnaryHandler = (_context, account) => ({
  body: {
    user: {
      id: account.userId,
      nickname: `Simulated user ${account.userId.slice(-4)}`,
      avatar: '',
      region: account.region === 'overseas' ? 'REGION_OVERSEA' : 'REGION_CN',
      membership: { level: account.membership === 'paid' ? 'LEVEL_INTERMEDIATE' : 'LEVEL_FREE' },
    },
  },
});

const getSubscriptionStats: UnaryHandler = (context, account) => {
  const cycleEnd = new Date(context.state.now() + 30 * 86_400_000).toISOString();
  const soon = new Date(context.state.now() + 5 * 3_600_000).toISOString();
  return {
    body: {
      subscriptionBalance: {
        feature: 'FEATURE_OMNI',
        type: account.membership === 'paid' ? 'TYPE_SUBSCRIPTION' : 'TYPE_FREE',
        unit: 'UNIT_CREDIT',
        amountUsedRatio: 0.25,
        kimiCodeUsedRatio: 0,
        expireTime: cycleEnd,
      },
      ratelimitCode5h: { enabled: false, resetTime: soon },
      ratelimitCode7d: { enabled: false, resetTime: cycleEnd },
    },
  };
};

/** Path → handler for the unary RPCs (note the package split of spec §6 item 12). */
export const UNARY_ROUTES: Record<string, RouteHandler> = {
  '/apiv2/kimi.chat.v1.ChatService/ListChats': unary(listChats),
  '/apiv2/kimi.chat.v1.ChatService/DeleteChat': unary(deleteChat),
  '/apiv2/kimi.chat.v1.ChatService/BatchDeleteChats': unary(batchDeleteChats),
  '/apiv2/kimi.gateway.chat.v1.ChatService/ListMessages': unary(listMessages),
  '/apiv2/kimi.gateway.chat.v1.ChatService/GetChat': unary(getChat),
  '/apiv2/kimi.gateway.chat.v1.ChatService/CancelChat': unary(cancelChat),
  '/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels': unary(() => ({ body: availableModels() })),
  '/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser': unary(getCurrentUser),
  '/apiv2/kimi.gateway.membership.v2.MembershipService/GetSubscriptionStats': unary(getSubscriptionStats),
};
