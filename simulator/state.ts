/**
 * @module simulator/state
 * The simulator's memory: accounts, refresh-token rotation with a one-use grace (spec §3.4), chats and messages,
 * files, and per-account stream slots (spec §3.12/§3.13). No HTTP here.
 */
import { newDecimalId, newUuidLikeId, newXid } from './ids.ts';
import type { TokenClaims, TokenFamily, TokenProblem, TokenSigner } from './tokens.ts';
import type { MessageStatus, ParseStatus, SimulatedAccount, SimulatedFile } from './simulator-types.ts';

export interface Settings {
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  refreshGraceSeconds: number;
  chunkDelayMs: number;
  maxConcurrentStreamsPerAccount: number;
  documentParseDelayMs: number;
  imageParseDelayMs: number;
  maxUploadBytes: number;
  clock: () => number;
}

export interface MessageRecord {
  id: string;
  parentId?: string;
  role: 'user' | 'assistant';
  text: string;
  fileIds: string[];
  status: MessageStatus;
  createTime: string;
  scenario?: string;
}

export interface ChatRecord {
  id: string;
  name: string;
  dialect: 'current' | 'legacy';
  messages: MessageRecord[];
  deleted: boolean;
  createTime: string;
  updateTime: string;
  /** Aborts the running stream (CancelChat); set while a stream holds the chat. */
  activeStream?: AbortController;
}

/** What the simulator stores per file: the public view minus its derived status, plus how parsing will go. */
export interface FileRecord extends Omit<SimulatedFile, 'status'> {
  parseDelayMs: number;
  outcome: 'success' | 'failed';
}

export interface AccountRecord {
  userId: string;
  region: 'cn' | 'overseas';
  membership: 'free' | 'paid';
  deviceId: string;
  sessionId: string;
  refreshCount: number;
  currentRefresh: Partial<Record<TokenFamily, string>>;
  chats: Map<string, ChatRecord>;
  files: Map<string, FileRecord>;
  activeStreams: number;
  researchUsed: number;
}

/** A legacy pre-signed object between `/api/pre-sign-url` and `/api/file` (spec §2.3). */
export interface PresignedObject {
  userId: string;
  name: string;
  fileId: string;
  received?: { fileName: string; contentType: string; sizeBytes: number; sha256: string };
}

/** Legacy answer left after a `length` event, continued by `segment_id` + `action:"continue"` (spec §2.4). */
export interface LegacySegment {
  userId: string;
  chatId: string;
  remainder: string;
}

interface RefreshRecord {
  userId: string;
  state: 'current' | 'rotated';
  rotatedAtMs: number;
  graceUsed: boolean;
}

/** A held stream slot: `cancelSignal` fires on CancelChat; `release` must run when the stream ends. */
export interface StreamSlot {
  readonly cancelSignal: AbortSignal;
  attach(chat: ChatRecord): void;
  release(): void;
}

export type AuthFailure = TokenProblem | 'wrong-type' | 'wrong-family' | 'unknown-user' | 'revoked' | 'reused';

export type RefreshOutcome =
  | { ok: true; account: AccountRecord; accessToken: string; refreshToken: string }
  | { ok: false; problem: AuthFailure };

export type AccessOutcome = { ok: true; account: AccountRecord; claims: TokenClaims } | { ok: false; problem: AuthFailure };

export class SimulatorState {
  readonly settings: Settings;
  readonly #signer: TokenSigner;
  readonly accounts = new Map<string, AccountRecord>();
  readonly #refreshRecords = new Map<string, RefreshRecord>();
  readonly presignedObjects = new Map<string, PresignedObject>();
  readonly legacySegments = new Map<string, LegacySegment>();

  constructor(settings: Settings, signer: TokenSigner) {
    this.settings = settings;
    this.#signer = signer;
  }

  now(): number {
    return this.settings.clock();
  }

  isoNow(): string {
    return new Date(this.now()).toISOString();
  }

  issueAccount(options: { region?: 'cn' | 'overseas'; membership?: 'free' | 'paid' } = {}): SimulatedAccount {
    const account: AccountRecord = {
      userId: newXid(this.now()),
      region: options.region ?? 'cn',
      membership: options.membership ?? 'free',
      deviceId: newDecimalId('7'),
      sessionId: newDecimalId('17'),
      refreshCount: 0,
      currentRefresh: {},
      chats: new Map(),
      files: new Map(),
      activeStreams: 0,
      researchUsed: 0,
    };
    this.accounts.set(account.userId, account);
    return {
      userId: account.userId,
      accessToken: this.mintAccess(account, 'account'),
      refreshToken: this.#mintRefresh(account, 'account'),
      legacyRefreshToken: this.#mintRefresh(account, 'user-center'),
    };
  }

  mintAccess(account: AccountRecord, family: TokenFamily): string {
    return this.#signer.sign(this.#claims(account, family, 'access', this.settings.accessTokenTtlSeconds));
  }

  /** Rotates both tokens (spec §3.4); a rotated-away refresh token works once more within the grace window. */
  refresh(token: string, families: TokenFamily[]): RefreshOutcome {
    const verified = this.#signer.verify(token, this.now());
    if (!verified.ok) return verified;
    const { claims } = verified;
    if (claims.typ !== 'refresh') return { ok: false, problem: 'wrong-type' };
    if (!families.includes(claims.iss)) return { ok: false, problem: 'wrong-family' };
    const account = this.accounts.get(claims.sub);
    if (!account) return { ok: false, problem: 'unknown-user' };
    const record = this.#refreshRecords.get(claims.jti);
    if (!record) return { ok: false, problem: 'revoked' };
    let refreshToken: string;
    if (record.state === 'current') {
      record.state = 'rotated';
      record.rotatedAtMs = this.now();
      refreshToken = this.#mintRefresh(account, claims.iss);
    } else {
      const withinGrace = this.now() - record.rotatedAtMs <= this.settings.refreshGraceSeconds * 1000;
      if (record.graceUsed || !withinGrace) return { ok: false, problem: 'reused' };
      // The grace use answers with the account's live refresh token, so a racing client converges on it.
      record.graceUsed = true;
      refreshToken = account.currentRefresh[claims.iss] ?? this.#mintRefresh(account, claims.iss);
    }
    account.refreshCount += 1;
    return { ok: true, account, refreshToken, accessToken: this.mintAccess(account, claims.iss) };
  }

  /** Validates a Bearer access token of either family (spec §3.4; §10.1 lets cookie-era tokens call Connect). */
  authenticate(token: string | undefined): AccessOutcome {
    if (!token) return { ok: false, problem: 'malformed' };
    const verified = this.#signer.verify(token, this.now());
    if (!verified.ok) return verified;
    if (verified.claims.typ !== 'access') return { ok: false, problem: 'wrong-type' };
    const account = this.accounts.get(verified.claims.sub);
    if (!account) return { ok: false, problem: 'unknown-user' };
    return { ok: true, account, claims: verified.claims };
  }

  /** Takes a stream slot; undefined when the account is at its limit or the chat already streams (§3.12). */
  acquireStream(account: AccountRecord, chat: ChatRecord | undefined): StreamSlot | undefined {
    if (account.activeStreams >= this.settings.maxConcurrentStreamsPerAccount) return undefined;
    if (chat?.activeStream) return undefined;
    account.activeStreams += 1;
    const controller = new AbortController();
    let held: ChatRecord | undefined;
    let released = false;
    const slot: StreamSlot = {
      cancelSignal: controller.signal,
      attach(target) {
        held = target;
        target.activeStream = controller;
      },
      release() {
        if (released) return;
        released = true;
        account.activeStreams -= 1;
        if (held && held.activeStream === controller) held.activeStream = undefined;
      },
    };
    if (chat) slot.attach(chat);
    return slot;
  }

  createChat(account: AccountRecord, dialect: 'current' | 'legacy', name: string, idShape: 'uuid' | 'xid'): ChatRecord {
    const createTime = this.isoNow();
    const id = idShape === 'uuid' ? newUuidLikeId(this.now()) : newXid(this.now());
    const chat: ChatRecord = { id, name, dialect, messages: [], deleted: false, createTime, updateTime: createTime };
    account.chats.set(id, chat);
    return chat;
  }

  /** A live (not deleted) chat of this account. */
  findChat(account: AccountRecord, chatId: string): ChatRecord | undefined {
    const chat = account.chats.get(chatId);
    return chat && !chat.deleted ? chat : undefined;
  }

  addMessage(chat: ChatRecord, message: Omit<MessageRecord, 'id' | 'createTime'>): MessageRecord {
    const record: MessageRecord = { ...message, id: newUuidLikeId(this.now()), createTime: this.isoNow() };
    chat.messages.push(record);
    chat.updateTime = record.createTime;
    return record;
  }

  addFile(account: AccountRecord, file: Omit<FileRecord, 'uploadedAt'>): FileRecord {
    const record: FileRecord = { ...file, uploadedAt: this.now() };
    account.files.set(record.id, record);
    return record;
  }

  fileStatus(file: FileRecord): ParseStatus {
    if (this.now() - file.uploadedAt < file.parseDelayMs) return 'processing';
    return file.outcome;
  }

  #mintRefresh(account: AccountRecord, family: TokenFamily): string {
    const claims = this.#claims(account, family, 'refresh', this.settings.refreshTokenTtlSeconds);
    this.#refreshRecords.set(claims.jti, { userId: account.userId, state: 'current', rotatedAtMs: 0, graceUsed: false });
    const token = this.#signer.sign(claims);
    account.currentRefresh[family] = token;
    return token;
  }

  #claims(account: AccountRecord, family: TokenFamily, typ: 'access' | 'refresh', ttlSeconds: number): TokenClaims {
    const iat = Math.floor(this.now() / 1000);
    return {
      iss: family,
      ...(family === 'account' ? { aud: [account.region === 'overseas' ? 'kimi.ai' : 'kimi.com'] } : {}),
      typ,
      app_id: 'kimi',
      sub: account.userId,
      ssid: account.sessionId,
      device_id: account.deviceId,
      space_id: account.userId,
      abstract_user_id: account.userId,
      region: account.region,
      membership: { level: account.membership === 'paid' ? 30 : 10 },
      exp: iat + ttlSeconds,
      iat,
      jti: newXid(this.now()),
    };
  }
}
