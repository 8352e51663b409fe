/**
 * @module simulator/simulator-types
 * Public types of the upstream simulator (re-exported by simulator.ts, the entry file).
 */
import type { ScenarioName } from './scenarios.ts';

export type { ScenarioName } from './scenarios.ts';

export interface SimulatorOptions {
  /** 0 = a free port (default 0). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Access-token lifetime, default 900 (spec §3.4, §9 D2). 0 makes tokens expire at once. */
  accessTokenTtlSeconds?: number;
  /** Refresh-token lifetime, default 90 days. */
  refreshTokenTtlSeconds?: number;
  /** How long a rotated-away refresh token may still be used once, default 10 (spec §3.4). */
  refreshGraceSeconds?: number;
  /** Delay between streamed frames/events, default 0. */
  chunkDelayMs?: number;
  /** Concurrent Chat/legacy streams per account before `session in progress`, default 2 (spec §3.13). */
  maxConcurrentStreamsPerAccount?: number;
  /** Scenario used when none is set, default 'normal'. `reset()` returns to it. */
  scenario?: ScenarioName;
  /** Time documents stay PROCESSING after upload, default 300 ms (spec §3.10). */
  documentParseDelayMs?: number;
  /** Time images stay PROCESSING after upload, default 0. */
  imageParseDelayMs?: number;
  /** Largest accepted upload, default 100 MiB. */
  maxUploadBytes?: number;
  /** Recorded requests kept (oldest dropped first), default 10 000, so a long-running demo stays bounded. */
  maxRecordedRequests?: number;
  /** Clock in epoch ms (token expiry, grace window, parse progress), default Date.now. */
  clock?: () => number;
}

export interface SimulatedAccount {
  userId: string;
  /** Account-service refresh token (iss "account", typ "refresh"). */
  refreshToken: string;
  /** Account-service access token (iss "account", typ "access"). */
  accessToken: string;
  /** Legacy refresh token (iss "user-center", typ "refresh") for §2.2 and the GET refresh path. */
  legacyRefreshToken: string;
}

export interface RecordedRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Lowercase names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Body as text when it is JSON-like (Chat: the decoded envelope's JSON), else undefined. */
  bodyText?: string;
  bodyJson?: unknown;
  bodyBytes: number;
  /** Epoch ms of arrival. */
  time: number;
  /** The account the request authenticated as, when known. */
  userId?: string;
  /** Scenario applied to this request, when it was a chat/refresh/upload request. */
  scenario?: ScenarioName;
}

export type MessageStatus = 'generating' | 'completed' | 'failed' | 'interrupted';

export interface SimulatedMessage {
  id: string;
  parentId?: string;
  role: 'user' | 'assistant';
  text: string;
  fileIds: string[];
  status: MessageStatus;
  createTime: string;
}

export interface SimulatedChat {
  id: string;
  name: string;
  /** Which API created it: 'current' (Connect Chat / POST /api/chat by a current token) or 'legacy'. */
  dialect: 'current' | 'legacy';
  messages: SimulatedMessage[];
  deleted: boolean;
  createTime: string;
  updateTime: string;
}

export type ParseStatus = 'processing' | 'success' | 'failed';

export interface SimulatedFile {
  id: string;
  name: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  kind: 'image' | 'document';
  /** Where it came from: multipart upload (§3.10) or legacy pre-sign + PUT + /api/file (§2.3). */
  via: 'upload' | 'legacy';
  uploadedAt: number;
  /** Status at the simulator's clock now. */
  status: ParseStatus;
}

export interface Simulator {
  /** e.g. http://127.0.0.1:43210 — one origin serves the paths of every Kimi host. */
  readonly url: string;
  issueAccount(options?: { region?: 'cn' | 'overseas'; membership?: 'free' | 'paid' }): SimulatedAccount;
  /** Scenario for all following requests (global), or for one account (by userId); `times` then reverts. */
  setScenario(name: ScenarioName, options?: { userId?: string; times?: number }): void;
  readonly requests: RecordedRequest[];
  /** Successful refreshes of an account (both refresh endpoints, both token families). */
  refreshCount(userId: string): number;
  activeStreams(userId?: string): number;
  chats(userId: string): SimulatedChat[];
  files(userId: string): SimulatedFile[];
  /** Clears scenarios (back to options.scenario) and recorded requests; accounts, chats and files stay. */
  reset(): void;
  /** Closes the server and every socket, ending stalled streams; resolves promptly. */
  close(): Promise<void>;
}
