/**
 * @module http/routes/route-test-kit
 * Test support for the client API routes: the real HTTP app on a loopback port with a scripted chat
 * service, so that real SDK clients exercise the translators without an upstream. The scripted service
 * answers from the request like a tool-following model (a call when the instructions offer tools and the
 * history holds no tool result; prose otherwise), streaming its text in small pieces.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { ChatService, ChatStream } from '../../chat/chat-service.ts';
import type { ChatRequest } from '../../chat/chat-request.ts';
import { createLogger } from '../../log.ts';
import { inBatchesOfOne, type ChatEvent } from '../../upstream/dialect.ts';
import { createApp, type Route } from '../app.ts';
import { createCredentialResolver } from '../credentials.ts';

export interface ScriptedAnswer {
  text: string;
  reasoning?: string;
  /** Thrown after the text (a failure after the first byte). */
  errorAfter?: Error;
  /** Awaited after the finish event, where the chat service records the chat and releases it before its stream ends. */
  beforeEnd?: Promise<void>;
}

export type Responder = (request: ChatRequest, round: number) => ScriptedAnswer;

export interface ScriptedChat extends ChatService {
  readonly requests: ChatRequest[];
}

/** A tool-following responder: calls `toolName` with `argumentsText` while no tool result is in the history. */
export function toolFollower(toolName: string, argumentsText: string): Responder {
  return (request) => {
    const hasResult = request.messages.some((message) => message.role === 'tool');
    if (request.instructions?.includes('<tools>') && !hasResult) return { text: `Calling it. <tool_call name="${toolName}">${argumentsText}</tool_call>` };
    return { text: hasResult ? 'The tool says: done 完成.' : 'Plain answer 你好.' };
  };
}

export function createScriptedChat(respond: Responder): ScriptedChat {
  const requests: ChatRequest[] = [];
  function streamChat(request: ChatRequest, signal: AbortSignal): ChatStream {
    requests.push(request);
    const answer = respond(request, requests.length);
    const conversationId = request.conversationId ?? `chat-${requests.length}`;
    async function* events(): AsyncGenerator<ChatEvent> {
      yield { type: 'conversation-start', conversationId };
      yield { type: 'message-start', messageId: `m-${requests.length}` };
      if (answer.reasoning) yield { type: 'reasoning-delta', text: answer.reasoning };
      for (let offset = 0; offset < answer.text.length; offset += 7) {
        signal.throwIfAborted();
        yield { type: 'text-delta', text: answer.text.slice(offset, offset + 7) };
      }
      if (answer.errorAfter) throw answer.errorAfter;
      yield { type: 'usage', promptTokens: 12, completionTokens: 8, isEstimate: true };
      yield { type: 'finish', reason: 'stop' };
      await answer.beforeEnd;
    }
    return { model: { publicId: request.model ?? 'kimi', thinking: false, search: false, silentSearch: false }, modelIsFallback: false, meta: { attempts: 1 }, batches: inBatchesOfOne(events()) };
  }
  return { requests, streamChat, deleteConversation: async () => undefined, idle: async () => undefined };
}

export interface RouteServer {
  url: string;
  close(): Promise<void>;
}

/** The app with `routes` on 127.0.0.1:0; requests need `Authorization: Bearer <anything>` or `x-api-key`. */
export async function startRouteServer(buildRoutes: (deps: { chat: ChatService; credentials: ReturnType<typeof createCredentialResolver>; bodyLimitBytes: number }) => Route[], chat: ChatService): Promise<RouteServer> {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const credentials = createCredentialResolver({ apiKeys: [], hasServerPool: false });
  const app = createApp({ routes: buildRoutes({ chat, credentials, bodyLimitBytes: 1_000_000 }), log: createLogger({ level: 'error', destination: sink }), corsOrigins: [] });
  const server: Server = createServer((request, response) => app.handle(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
