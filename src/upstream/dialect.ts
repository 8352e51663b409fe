/**
 * @module upstream/dialect
 * The contract between the gateway and a Kimi web protocol ("dialect"). Types only.
 *
 * `http/`, `chat/` and `accounts/` depend on this file and never on a dialect folder. A dialect turns
 * Kimi's wire format into the small `ChatEvent` vocabulary below; errors are thrown from the
 * iterator as `GatewayError` subclasses (errors.ts), never sent as events.
 */

export type DialectName = 'current' | 'legacy';

/** Identity claims used to derive the x-msh-* / x-traffic-id headers (protocol spec §3.3, §3.4). */
export interface AccountIdentity {
  userId?: string;
  deviceId?: string;
  sessionId?: string;
}

/** What a dialect needs to make authenticated calls. Never logged. */
export interface Session {
  readonly dialect: DialectName;
  readonly accessToken: string;
  /** Epoch milliseconds; undefined when the token carries no `exp`. */
  readonly accessExpiresAt: number | undefined;
  readonly identity: AccountIdentity;
}

/** Result of a refresh. `refreshToken` is set when the upstream rotated it (spec §3.4, §10.2). */
export interface SessionGrant extends Session {
  readonly refreshToken?: string;
  readonly refreshExpiresAt?: number;
}

export interface AccountProfile {
  userId: string;
  name?: string;
  region?: string;
  membershipLevel?: string;
}

/** The resolved meaning of a public model name (chat/model-catalog.ts makes these). */
export interface ModelChoice {
  /** The model name the client asked for, echoed in responses. */
  publicId: string;
  /** Upstream catalogue id sent as options.model (current dialect), e.g. `k2d6-chat`. */
  upstreamModel?: string;
  /** Connect scenario, e.g. `SCENARIO_CHAT`. */
  scenario?: string;
  /** kimi+ agent id (`ok-computer`, a legacy 20-char agent id, ...). */
  kimiplusId?: string;
  agentMode?: string;
  reasoningEffort?: string;
  thinking: boolean;
  search: boolean;
  /** Search without writing the sources into the answer text. */
  silentSearch: boolean;
  /** Legacy dialect switches (spec §2.4). */
  research?: boolean;
  math?: boolean;
}

export interface UploadedFile {
  id: string;
  name: string;
  mediaType: string;
  sizeBytes: number;
  kind: 'image' | 'document';
  /** Dialect-specific extras the dialect needs to reference the file again (legacy refs_file detail). */
  detail?: Record<string, unknown>;
}

/** One upstream turn: the single user message Kimi reads (spec §3.5 / §2.4). */
export interface KimiPrompt {
  text: string;
  model: ModelChoice;
  /** Continue this upstream chat instead of creating one. */
  conversation?: { id: string; parentMessageId?: string };
  files: UploadedFile[];
}

/** An attachment ready for upload: bytes arrive as a stream so that large files are never held twice. */
export interface UploadSource {
  fileName: string;
  mediaType: string;
  /** Known size in bytes (needed for multipart Content-Length and the legacy pre-sign call). */
  sizeBytes: number;
  kind: 'image' | 'document';
  body: AsyncIterable<Uint8Array>;
}

export interface SearchSource {
  /** 1-based number used in `[n]` markers in the text. */
  index: number;
  title: string;
  url: string;
  siteName?: string;
  snippet?: string;
}

export type FinishReason = 'stop' | 'length' | 'content-filter';

export type ChatEvent =
  /** The upstream chat is known; its id is the conversation id clients continue with. */
  | { type: 'conversation-start'; conversationId: string }
  /** The assistant message id (the next turn's parent id). */
  | { type: 'message-start'; messageId: string }
  | { type: 'text-delta'; text: string }
  | { type: 'reasoning-delta'; text: string }
  | { type: 'search-source'; source: SearchSource }
  /** Informational upstream notice, e.g. kind `model-degrade` (spec §3.13). */
  | { type: 'notice'; kind: string; message: string }
  /** Token counts; dialects rarely know them, so the chat service estimates them (isEstimate). */
  | { type: 'usage'; promptTokens: number; completionTokens: number; isEstimate: boolean }
  | { type: 'finish'; reason: FinishReason };

export interface StreamReplyOptions {
  /** How inline citation markers are rendered: `[n]` or removed (silent search). */
  citations: 'numbered' | 'strip';
}

export interface ConversationState {
  /** Id of the latest assistant message, the parent of the next user turn. */
  lastAssistantMessageId?: string;
}

export interface CatalogModel {
  id: string;
  displayName?: string;
  scenario?: string;
  kimiplusId?: string;
  agentMode?: string;
  thinking?: boolean;
  reasoningEfforts?: string[];
  defaultReasoningEffort?: string;
}

/** What the upstream says about an account's plan usage (current dialect: GetSubscriptionStats, §3.9, §3.13). */
export interface AccountUsage {
  /** Share of the plan's credits used this cycle, 0..1. */
  usedRatio?: number;
  /** When the cycle ends (epoch ms). */
  resetAt?: number;
  /** Plan type as Kimi names it, e.g. TYPE_FREE. */
  plan?: string;
}

export interface KimiDialect {
  readonly name: DialectName;
  /** Exchange a refresh token for an access token (and possibly a rotated refresh token). */
  refreshSession(refreshToken: string, signal: AbortSignal): Promise<SessionGrant>;
  /** Build a session from an access token without a network call (identity from JWT claims). */
  sessionFromAccessToken(accessToken: string): Session;
  /** Cheap authenticated probe (current user); throws AuthenticationError when refused. */
  checkSession(session: Session, signal: AbortSignal): Promise<AccountProfile>;
  /** The answer as events, in batches: each batch holds what one upstream read carried (never empty). */
  streamReply(session: Session, prompt: KimiPrompt, options: StreamReplyOptions, signal: AbortSignal): AsyncIterable<ChatEventBatch>;
  /** Look up an existing chat; throws NotFoundError (`conversation_not_found`) when it does not exist. */
  findConversation(session: Session, conversationId: string, signal: AbortSignal): Promise<ConversationState>;
  deleteConversation(session: Session, conversationId: string, signal: AbortSignal): Promise<void>;
  /** Upload and wait until the upstream has parsed the file. */
  uploadFile(session: Session, source: UploadSource, signal: AbortSignal): Promise<UploadedFile>;
  listModels(session: Session, signal: AbortSignal): Promise<CatalogModel[]>;
  /** Plan usage, where the dialect can tell (optional: the legacy site reports none). */
  accountUsage?(session: Session, signal: AbortSignal): Promise<AccountUsage>;
}

/**
 * Events in their order, grouped as they arrived. A burst of frames from one read is handed on in one step:
 * each async hop between layers costs about as much CPU as mapping an event (bench B4), so the layers pass
 * batches and only consumers that need single events take them apart (`eachEvent`).
 */
export type ChatEventBatch = readonly ChatEvent[];

/** The events of a batched stream one by one (for consumers that work event by event). */
export async function* eachEvent<Event>(batches: AsyncIterable<readonly Event[]>): AsyncGenerator<Event> {
  for await (const batch of batches) yield* batch;
}

/** A stream of single events as batches of one (a stage that works event by event, in front of a batch consumer). */
export async function* inBatchesOfOne<Event>(events: AsyncIterable<Event>): AsyncGenerator<readonly Event[]> {
  for await (const event of events) yield [event];
}
