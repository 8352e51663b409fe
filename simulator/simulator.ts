/**
 * @module simulator/simulator
 * Entry of the upstream simulator: a loopback fake of Kimi's web backend (both dialects) written from the
 * protocol spec alone, imports nothing from src/. One origin serves the paths of www.kimi.com, auth.kimi.com,
 * the /apiv2-files host and the legacy kimi.moonshot.cn. See README.md beside this file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleRefreshTokenRpc, handleRestRefresh } from './auth-routes.ts';
import { handleChat } from './chat-route.ts';
import { CONTROL_PREFIX, handleControl } from './control-routes.ts';
import { handleLegacyFile, handleLegacyParseProcess, handleParseProgress, handlePreSign, handlePresignedPut, handleUpload, PRESIGNED_PREFIX } from './file-routes.ts';
import { sendConnectError, type RouteContext, type RouteHandler } from './http-io.ts';
import { LEGACY_ROUTES } from './legacy-routes.ts';
import { handleQrControl, QR_CONTROL_PREFIX, QR_ROUTES } from './qr-login.ts';
import { ScenarioBook } from './scenarios.ts';
import { SimulatorState, type ChatRecord, type FileRecord, type Settings } from './state.ts';
import { createTokenSigner } from './tokens.ts';
import { UNARY_ROUTES } from './unary-routes.ts';
import type { RecordedRequest, SimulatedChat, SimulatedFile, Simulator, SimulatorOptions } from './simulator-types.ts';

export type * from './simulator-types.ts';
export { SCENARIOS, SCENARIO_NAMES, isScenarioName } from './scenarios.ts';
export { simulatedReply, simulatedSearchSources, simulatedThinkingText, stripCitationMarkers, collapseText } from './reply-text.ts';
export type { SimulatedReply, SearchSourceSpec, ReplyInput } from './reply-text.ts';

const POST_ROUTES: Record<string, RouteHandler> = {
  '/api/account.gateway.v1.AuthService/RefreshToken': handleRefreshTokenRpc,
  '/apiv2/kimi.gateway.chat.v1.ChatService/Chat': handleChat,
  '/apiv2-files/file/upload': handleUpload,
  '/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress': handleParseProgress,
  '/api/pre-sign-url': handlePreSign,
  '/api/file': handleLegacyFile,
  '/api/file/parse_process': handleLegacyParseProcess,
  ...UNARY_ROUTES,
  ...QR_ROUTES,
};

function findRoute(method: string, pathname: string): RouteHandler | undefined {
  if (method === 'POST' && Object.hasOwn(POST_ROUTES, pathname)) return POST_ROUTES[pathname];
  if (method === 'GET' && pathname === '/api/auth/token/refresh') return handleRestRefresh;
  if (method === 'PUT' && pathname.startsWith(PRESIGNED_PREFIX)) return handlePresignedPut;
  return LEGACY_ROUTES.find((route) => route.method === method && route.pattern.test(pathname))?.handler;
}

function resolveSettings(options: SimulatorOptions): Settings {
  return {
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 900,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 90 * 86_400,
    refreshGraceSeconds: options.refreshGraceSeconds ?? 10,
    chunkDelayMs: options.chunkDelayMs ?? 0,
    maxConcurrentStreamsPerAccount: options.maxConcurrentStreamsPerAccount ?? 2,
    documentParseDelayMs: options.documentParseDelayMs ?? 300,
    imageParseDelayMs: options.imageParseDelayMs ?? 0,
    maxUploadBytes: options.maxUploadBytes ?? 100 * 1024 * 1024,
    clock: options.clock ?? Date.now,
  };
}

/** A detached copy without internal fields, so callers cannot disturb the simulator's state. */
function publicChat({ activeStream: _stream, messages, ...chat }: ChatRecord): SimulatedChat {
  return { ...chat, messages: messages.map((message) => ({ ...message, fileIds: [...message.fileIds] })) };
}

function publicFile(file: FileRecord, state: SimulatorState): SimulatedFile {
  const { parseDelayMs: _delay, outcome: _outcome, ...visible } = file;
  return { ...visible, status: state.fileStatus(file) };
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const settings = resolveSettings(options);
  const state = new SimulatorState(settings, createTokenSigner());
  const scenarios = new ScenarioBook(options.scenario ?? 'normal');
  const requests: RecordedRequest[] = [];
  const maxRecorded = options.maxRecordedRequests ?? 10_000;
  const closing = new AbortController();
  const server = createServer({ noDelay: true, requestTimeout: 0 });
  let baseUrl = '';

  const simulator: Simulator = {
    get url() {
      return baseUrl;
    },
    requests,
    issueAccount: (accountOptions) => state.issueAccount(accountOptions),
    setScenario: (name, scenarioOptions) => scenarios.set(name, scenarioOptions),
    refreshCount: (userId) => state.accounts.get(userId)?.refreshCount ?? 0,
    activeStreams: (userId) =>
      userId === undefined
        ? [...state.accounts.values()].reduce((sum, account) => sum + account.activeStreams, 0)
        : (state.accounts.get(userId)?.activeStreams ?? 0),
    chats: (userId) => [...(state.accounts.get(userId)?.chats.values() ?? [])].map(publicChat),
    files: (userId) => [...(state.accounts.get(userId)?.files.values() ?? [])].map((file) => publicFile(file, state)),
    reset() {
      scenarios.clear();
      requests.length = 0;
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', baseUrl);
    if (url.pathname.startsWith(QR_CONTROL_PREFIX)) return handleQrControl(req, res, url, state);
    if (url.pathname.startsWith(CONTROL_PREFIX)) {
      return handleControl(req, res, url, { simulator, userIds: () => [...state.accounts.keys()], describeScenarios: () => scenarios.describe() });
    }
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname + url.search, headers: headersOf(req), bodyBytes: 0, time: Date.now() };
    requests.push(record);
    if (requests.length > maxRecorded) requests.splice(0, requests.length - maxRecorded);
    const requestGone = new AbortController();
    res.once('close', () => requestGone.abort());
    const context: RouteContext = { req, res, url, state, scenarios, record, baseUrl, signal: AbortSignal.any([closing.signal, requestGone.signal]) };
    const route = findRoute(req.method ?? 'GET', url.pathname);
    if (!route) {
      req.resume();
      return sendConnectError(res, 'unimplemented', `no route for ${req.method} ${url.pathname}`, undefined, 404);
    }
    await route(context);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else sendConnectError(res, 'internal', `simulator failure: ${error instanceof Error ? error.message : String(error)}`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  baseUrl = `http://${host}:${address.port}`;
  return simulator;
}
