/**
 * @module main
 * The composition root: builds the state store, both dialects, the account pool, the chat service
 * and the HTTP app from one Config; listens; shuts down gracefully. The only module that knows
 * every concrete piece.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { storeKeys, type Account } from './accounts/account.ts';
import { createAccountPool, type AccountPool, type AccountSnapshot } from './accounts/account-pool.ts';
import { importAccount } from './accounts/import-account.ts';
import type { AccountView } from './chat/chat-ports.ts';
import { createChatAccounts } from './chat-accounts.ts';
import { createChatService, type ChatService } from './chat/chat-service.ts';
import { createModelCatalog, parseModelMap } from './chat/model-catalog.ts';
import { preloadTokenizer } from './chat/estimate-tokens.ts';
import type { Config } from './config.ts';
import { openAttachment } from './files/fetch-attachment.ts';
import { findSpooledPayload, openSpooledDataUrl } from './files/open-spooled-data-url.ts';
import { createGuardedAgent } from './files/ssrf-agent.ts';
import { sweepOrphanedTempFiles } from './files/spool-file.ts';
import { createApp, type App, type Route } from './http/app.ts';
import { createCredentialResolver } from './http/credentials.ts';
import { answerClientError, serverOptions } from './http/server-options.ts';
import { buildRoutes } from './http/routes.ts';
import { createLogger, type Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { startQrLogin } from './accounts/qr-login.ts';
import { doctorRoute } from './doctor/doctor-route.ts';
import { runDoctor } from './doctor/run-doctor.ts';
import { storeTokenAccess } from './doctor/store-token-access.ts';
import { clientApiRoutes } from './http/routes/client-api-routes.ts';
import { qrLoginRoutes } from './http/routes/qr-routes.ts';
import { openStateStore } from './store/open-state-store.ts';
import type { StateStore } from './store/state-store.ts';
import type { CatalogModel, DialectName, KimiDialect } from './upstream/dialect.ts';
import { createDialectsFromConfig, createUpstreamHttpFromConfig, doctorSettingsFrom } from './composition.ts';

export interface GatewayOptions {
  /** Install SIGTERM/SIGINT handlers that drain and exit (the CLI does; tests do not). */
  handleSignals?: boolean;
  version?: string;
  /** Log destination (tests capture logs to check that no token leaks). */
  logDestination?: NodeJS.WritableStream;
  /** Extra clean-up run after the gateway closed (the demo stops its simulator). */
  onClose?: () => Promise<void>;
}

export interface Gateway {
  url: string;
  port: number;
  server: Server;
  app: App;
  chat: ChatService;
  pool: AccountPool;
  store: StateStore;
  metrics: Metrics;
  log: Logger;
  /** Graceful: stop accepting, let streams finish up to SHUTDOWN_GRACE_MS, then end them. */
  close(graceMs?: number): Promise<void>;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const version = options.version ?? '0.0.0';
  const log = createLogger({ level: config.LOG_LEVEL, destination: options.logDestination });
  const metrics = createMetrics();
  const reportedUnknown = new Set<string>();
  const onUnknown = (kind: string, name: string) => {
    metrics.recordUnknownUpstream(kind, name);
    // Logged once per process (issue 10): drift is visible without flooding the log.
    if (!reportedUnknown.has(`${kind}:${name}`) && reportedUnknown.size < 1000) {
      reportedUnknown.add(`${kind}:${name}`);
      log.warn({ kind, name }, 'Kimi sent something this version does not know; ignored it');
    }
  };

  const http = createUpstreamHttpFromConfig(config, `Mozilla/5.0 (compatible; kimi-free-api/${version})`);
  const dialects = createDialectsFromConfig(config, http, onUnknown);

  // With Redis, the state file still backs the local fallback, so a token rotated during an outage survives a crash.
  // Temporary chats' records change with every answer: they are appended to a journal, not rewritten each second.
  const store = await openStateStore({
    redisUrl: config.REDIS_URL,
    stateFilePath: config.STATE_FILE,
    fallbackFilePath: config.REDIS_URL ? config.STATE_FILE : undefined,
    journalPrefixes: [storeKeys.conversationPrefix, storeKeys.deletionPrefix],
    log,
  });
  const pool = createAccountPool({
    store,
    dialects,
    dialectMode: config.KIMI_DIALECT,
    cooldownMs: config.ACCOUNT_COOLDOWN_MS,
    accountMaxConcurrency: config.ACCOUNT_MAX_CONCURRENCY,
    queueMax: config.QUEUE_MAX,
    queueTimeoutMs: config.QUEUE_TIMEOUT_MS,
    log,
    onRefresh: (result) => metrics.tokenRefreshes.inc({ result }),
  });
  await pool.addServerAccounts(config.serverTokens);
  // Accounts added at run time (add-account, QR login) are in the store: serve them from the first request, not from
  // the pool's first periodic reload a few seconds after a restart.
  await pool.reload();
  metrics.setAccountStatesSource(async () => countStates(await pool.snapshot()));

  const catalog = createModelCatalog({
    chatModel: config.KIMI_CHAT_MODEL,
    chatScenario: config.KIMI_CHAT_SCENARIO,
    thinkingEffort: config.KIMI_THINKING_EFFORT,
    presets: parseModelMap(config.KIMI_MODEL_MAP),
  });
  const attachmentAgent = createGuardedAgent({
    allowPrivate: config.ALLOW_PRIVATE_ATTACHMENT_URLS,
    connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
  });
  let attachmentOrdinal = 0;
  const chat = createChatService({
    dialects,
    accounts: createChatAccounts(pool),
    attachments: {
      open: async (reference, signal, spool) => {
        const common = {
          kind: reference.kind,
          maxBytes: config.ATTACHMENT_MAX_BYTES,
          fileNameHint: reference.fileName,
          ordinal: (attachmentOrdinal = (attachmentOrdinal % 1_000_000) + 1),
        };
        // A large base64 attachment was spooled to disk while the body was read; it stands here as a placeholder.
        const spooled = findSpooledPayload(reference.url, spool);
        const opened = spooled
          ? await openSpooledDataUrl(spooled, common)
          : await openAttachment(reference.url, { ...common, agent: attachmentAgent, signal });
        metrics.attachmentBytes.inc({ kind: reference.kind }, opened.sizeBytes);
        return opened;
      },
    },
    catalog,
    retentionSeconds: config.CHAT_RETENTION_SECONDS,
    maxAttempts: config.FAILOVER_MAX_ATTEMPTS,
    attemptBudgetMs: config.FAILOVER_BUDGET_MS,
    log,
    onAttemptError: (error, dialect) => metrics.recordUpstreamError(error, dialect),
  });

  const usage = createUsageCache(pool, dialects, 5 * 60_000);
  const upstreamCatalog = createCatalogCache(pool, dialects, config.KIMI_MODEL_CATALOG_TTL_SECONDS * 1000, (models) => catalog.useUpstream(models), log);
  // Learn Kimi's catalogue early so its model ids resolve on the first request; failures only mean defaults.
  void upstreamCatalog();
  const credentials = createCredentialResolver({ apiKeys: config.API_KEYS, hasServerPool: () => pool.serverAccounts().length > 0 });
  const errorCounts = new Map<string, number>();
  let isClosing = false;
  const startedAt = Date.now();
  const doctorTokens = storeTokenAccess(store, { dialectMode: config.KIMI_DIALECT });
  const qr = qrLoginRoutes({
    startQrLogin: (signal) => startQrLogin({ authUrl: config.KIMI_AUTH_URL, http, clientVersion: config.KIMI_CLIENT_VERSION }, signal),
    addAccountFromToken: (token, signal) => importAccountView(pool, store, token, signal),
    requireGatewayKey: credentials.requireGatewayKey,
  });
  const extraRoutes: Route[] = [
    ...clientApiRoutes({ chat, credentials, bodyLimitBytes: config.BODY_LIMIT_BYTES, log, onRepair: (problems) => log.warn({ problems }, 'tool/format repair round') }),
    {
      method: 'GET',
      path: '/v1/doctor',
      handler: doctorRoute({
        requireGatewayKey: credentials.requireGatewayKey,
        runDoctor: ({ signal, record }) =>
          runDoctor({ ...doctorSettingsFrom(config), http, tokens: doctorTokens, signal, record }),
      }),
    },
    { method: 'POST', path: '/v1/accounts/qr', handler: qr.create },
    { method: 'GET', path: '/v1/accounts/qr', handler: qr.status },
    { method: 'GET', path: '/v1/accounts/qr/*', handler: qr.status },
  ];
  const app = createApp({
    routes: buildRoutes({
      chat,
      catalog,
      credentials,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      upstreamModels: upstreamCatalog,
      checkToken: async (token, signal) => {
        const accounts = await pool.accountsFromBearer([token]);
        const [checked] = await pool.checkAccounts(accounts, signal);
        return checked?.state === 'live';
      },
      isShuttingDown: () => isClosing,
      operator: {
        version,
        dialectMode: config.KIMI_DIALECT,
        startedAt,
        listAccounts: async () => usage.attach((await pool.snapshot()).map(toAccountView)),
        addAccount: async (text, signal) => importAccountView(pool, store, text, signal),
        errorCounts: () => Object.fromEntries(errorCounts),
        unknownUpstream: () => metrics.unknownUpstreamCounts(),
        renderMetrics: () => metrics.render(),
      },
      extraRoutes,
    }),
    log,
    corsOrigins: config.CORS_ORIGINS,
    trustProxy: config.TRUST_PROXY,
    onRequestDone: (finished) => {
      if (finished.errorCode) errorCounts.set(finished.errorCode, (errorCounts.get(finished.errorCode) ?? 0) + 1);
      metrics.recordRequest({
        route: finished.route,
        model: finished.model ?? '',
        status: finished.status,
        timeToFirstByteSeconds: finished.timeToFirstByteMs === undefined ? undefined : finished.timeToFirstByteMs / 1000,
        durationSeconds: finished.durationMs / 1000,
      });
    },
  });

  const server = createServer(serverOptions(config.REQUEST_TIMEOUT_MS), app.handle);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  preloadTokenizer();
  // Attachments spooled by a process that crashed mid-request would otherwise stay in the temp folder.
  void sweepOrphanedTempFiles().then((deleted) => {
    if (deleted > 0) log.info({ deleted }, 'deleted temporary attachment files left by an earlier run');
  });
  if (config.API_KEYS.length === 0 && config.serverTokens.length > 0 && config.HOST !== '127.0.0.1') {
    log.warn({}, 'KIMI_TOKENS is set without API_KEYS: anyone who can reach this port can use the pool. Set API_KEYS.');
  }
  log.info({ port, host: config.HOST, dialect: config.KIMI_DIALECT, store: store.kind, accounts: config.serverTokens.length }, 'kimi-free-api listening');
  log.flush(); // start-up lines now, not with the first batch

  async function close(graceMs = config.SHUTDOWN_GRACE_MS): Promise<void> {
    if (isClosing) return;
    isClosing = true;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await app.drain(graceMs);
    qr.close();
    server.closeAllConnections();
    await stopped;
    await chat.idle();
    await pool.close();
    await store.close();
    await Promise.allSettled([http.close(), attachmentAgent.close()]);
    await options.onClose?.();
    log.info({}, 'kimi-free-api stopped');
  }

  if (options.handleSignals) {
    let signalsSeen = 0;
    // Every signal is handled: Node's default handler would kill the process at once, dropping the batched log lines
    // and the state store's pending writes (chat deletions). The second cuts the grace short; only a third, for a
    // shutdown that hangs (say, on a frozen Redis), exits without finishing it.
    const onSignal = (signal: NodeJS.Signals) => {
      signalsSeen += 1;
      if (signalsSeen === 2) {
        // No flush here: an asynchronous write still in flight when a third signal exits could be lost or reordered.
        log.warn({ signal }, 'second signal: ending open streams now, then finishing the shutdown (a third exits within a second)');
        app.cutDrainShort();
        return;
      }
      if (signalsSeen === 3) {
        log.warn({ signal }, 'third signal: exiting within a second, without finishing the shutdown');
        // Whichever exit comes first (this one, or close() finishing meanwhile), it says the shutdown was forced.
        process.exitCode = 1;
        app.cutDrainShort();
        void exitSoon(1_000);
        return;
      }
      if (signalsSeen > 3) process.exit(1);
      log.info({ signal }, 'shutting down: no new requests; open streams may finish (a second signal ends them now)');
      log.flush();
      // Exit once the log is written out: exiting while the flush above is still in flight let pino write the final
      // line synchronously ahead of it, so "stopped" could come before "shutting down" on a pipe.
      // Bounded: a standard output nobody reads must not hold the exit.
      const exitAfterLog = (code?: number) => {
        if (code !== undefined) process.exitCode = code;
        setTimeout(() => process.exit(), 1_000).unref();
        log.flush(() => process.exit());
      };
      void close().then(
        () => exitAfterLog(),
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          exitAfterLog(1);
        },
      );
    };
    /**
     * The third signal's exit: the streams just cut get a moment to record their chats, then whatever the state store
     * holds and has not written yet (chat records and deletion jobs, cooldowns) goes to disk. Both bounded, so a store
     * that hangs cannot hold the exit either. pino writes out the batched log lines on exit.
     */
    async function exitSoon(boundMs: number): Promise<never> {
      const deadline = Date.now() + boundMs;
      const timeLeft = () => new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
      while (app.openRequests > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      await Promise.race([store.flush?.().catch(() => undefined), timeLeft()]);
      process.exit(1);
    }
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port, server, app, chat, pool, store, metrics, log, close };
}

/**
 * Kimi's own model catalogue (spec §3.5, §9 D9), fetched with a server-pool account (or the caller's
 * own token when there is no pool) and cached for the TTL. A failure only means the static list.
 */
function createCatalogCache(
  pool: AccountPool,
  dialects: Record<DialectName, KimiDialect>,
  ttlMs: number,
  onLoaded: (models: CatalogModel[]) => void,
  log: Logger,
): (bearerTokens?: readonly string[]) => Promise<CatalogModel[]> {
  let cached: { at: number; models: CatalogModel[] } | undefined;
  let loading: Promise<CatalogModel[]> | undefined;
  // Said once until the catalogue loads again: /v1/models is asked often, and the cause does not change per call.
  let hasWarned = false;
  const warnOnce = (details: object, message: string) => {
    if (hasWarned) return;
    hasWarned = true;
    log.warn(details, message);
  };
  async function load(bearerTokens: readonly string[] | undefined): Promise<CatalogModel[]> {
    const server = pool.serverAccounts();
    const accounts = server.length > 0 ? server : bearerTokens ? await pool.accountsFromBearer(bearerTokens) : [];
    const candidates = accounts.filter((account) => account.dialect === 'current');
    if (candidates.length === 0) return cached?.models ?? [];
    const lease = await pool.lease({ candidates, signal: AbortSignal.timeout(10_000) });
    try {
      const session = await lease.session(AbortSignal.timeout(10_000));
      const models = await dialects[session.dialect].listModels(session, AbortSignal.timeout(10_000));
      if (models.length === 0) {
        warnOnce({}, "Kimi's model catalogue came back empty (spec §3.5): GET /v1/models lists the built-in names only; run doctor");
      } else {
        hasWarned = false;
      }
      cached = { at: Date.now(), models };
      onLoaded(models);
      return models;
    } finally {
      lease.release();
    }
  }
  return async (bearerTokens) => {
    if (cached && Date.now() - cached.at < ttlMs) return cached.models;
    loading ??= load(bearerTokens)
      .catch((error: unknown) => {
        warnOnce({ err: error instanceof Error ? error.message : String(error) }, "Kimi's model catalogue could not be read (spec §3.5): GET /v1/models lists the built-in names only; run doctor");
        return cached?.models ?? [];
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };
}

/**
 * Plan usage per server account (spec §3.9 GetSubscriptionStats), for the status page and /v1/accounts.
 * Views get what is cached; stale entries are fetched in the background so a page load never waits on Kimi.
 */
function createUsageCache(pool: AccountPool, dialects: Record<DialectName, KimiDialect>, ttlMs: number) {
  const cached = new Map<string, { at: number; quota: NonNullable<AccountView['quota']> | undefined }>();
  const loading = new Set<string>();
  async function load(account: Account): Promise<void> {
    const lease = await pool.lease({ candidates: [account], signal: AbortSignal.timeout(10_000) });
    try {
      const session = await lease.session(AbortSignal.timeout(10_000));
      const reported = await dialects[session.dialect].accountUsage?.(session, AbortSignal.timeout(10_000));
      const used = reported?.usedRatio === undefined ? undefined : Math.round(reported.usedRatio * 100);
      const quota = used === undefined ? undefined : { label: `${used}% of the plan used`, used, limit: 100, resetAt: reported?.resetAt, plan: reported?.plan };
      cached.set(account.id, { at: Date.now(), quota });
    } finally {
      lease.release();
    }
  }
  return {
    attach(views: AccountView[]): AccountView[] {
      const accounts = new Map(pool.serverAccounts().map((account) => [account.id, account]));
      return views.map((view) => {
        const entry = cached.get(view.id);
        const account = accounts.get(view.id);
        if (account && view.state !== 'invalid' && !loading.has(view.id) && (!entry || Date.now() - entry.at > ttlMs)) {
          loading.add(view.id);
          void load(account)
            .catch(() => cached.set(view.id, { at: Date.now(), quota: entry?.quota }))
            .finally(() => loading.delete(view.id));
        }
        return entry?.quota ? { ...view, quota: entry.quota } : view;
      });
    },
  };
}

/** With the store, re-adding an account marked invalid checks its stored (rotated) token again instead of leaving it invalid. */
async function importAccountView(pool: AccountPool, store: StateStore, text: string, signal: AbortSignal): Promise<AccountView & { warnings: string[] }> {
  const imported = await importAccount(pool, text, signal, { store });
  const [snapshot] = await pool.snapshot([imported.account]);
  return { ...toAccountView(snapshot), warnings: imported.warnings };
}

function toAccountView(snapshot: AccountSnapshot): AccountView {
  return { ...snapshot };
}

function countStates(snapshots: AccountSnapshot[]): Partial<Record<AccountSnapshot['state'], number>> {
  const counts: Partial<Record<AccountSnapshot['state'], number>> = {};
  for (const snapshot of snapshots) counts[snapshot.state] = (counts[snapshot.state] ?? 0) + 1;
  return counts;
}
