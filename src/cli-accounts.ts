/**
 * @module cli-accounts
 * `check` (one row per configured account: hash, dialect, state, expiry) and `add-account` (pasted
 * token, cookie, localStorage JSON or cURL → checked live → stored; a running gateway picks it up
 * within 5 s). Never prints a token. Both work on the accounts the state store holds (KIMI_TOKENS and earlier
 * `add-account`s), and refuse to start when REDIS_URL is set but Redis does not answer: a refresh rotates the
 * token, and a rotated token kept only in this short-lived process would be lost (§3.4, §10.2).
 */
import { createAccountPool, type AccountCheck, type AccountPool } from './accounts/account-pool.ts';
import { importAccount } from './accounts/import-account.ts';
import { qrLoginInstructions, startQrLogin } from './accounts/qr-login.ts';
import { GatewayError } from './errors.ts';
import type { Config } from './config.ts';
import { createLogger } from './log.ts';
import { openMemoryStore } from './store/memory-store.ts';
import { openRedisStore } from './store/redis-store.ts';
import type { StateStore } from './store/state-store.ts';
import { createDialectsFromConfig, createUpstreamHttpFromConfig } from './composition.ts';

interface CliPool {
  pool: AccountPool;
  store: StateStore;
  close(): Promise<void>;
}

/** Exit code when the state store cannot be used (like an unusable setting: nothing was attempted). */
const STORE_UNAVAILABLE_EXIT = 2;

class StoreUnavailableError extends Error {}

async function openPool(config: Config): Promise<CliPool> {
  const log = createLogger({ level: 'warn', destination: process.stderr });
  const store = await openCliStore(config, log);
  const http = createUpstreamHttpFromConfig(config, 'Mozilla/5.0 (compatible; kimi-free-api)');
  const dialects = createDialectsFromConfig(config, http);
  const pool = createAccountPool({ store, dialects, dialectMode: config.KIMI_DIALECT, reloadIntervalMs: 0, sweepIntervalMs: 0, log });
  await pool.addServerAccounts(config.serverTokens);
  // Accounts stored by earlier `add-account` runs (or another replica) are part of the server pool too.
  await pool.reload();
  return {
    pool,
    store,
    async close() {
      await pool.close();
      await store.close();
      await http.close();
    },
  };
}

/**
 * The gateway's store without its in-memory fallback: with REDIS_URL set, Redis must answer before any account is
 * refreshed, since the CLI exits right after and could not hand a rotated token to Redis later.
 */
async function openCliStore(config: Config, log: ReturnType<typeof createLogger>): Promise<StateStore> {
  if (!config.REDIS_URL) return openMemoryStore({ filePath: config.STATE_FILE, log });
  const store = await openRedisStore({ url: config.REDIS_URL, log, commandTimeoutMs: 1500 });
  if (store.isReady) return store;
  await store.close().catch(() => undefined);
  throw new StoreUnavailableError(
    'Redis (REDIS_URL) is not reachable, so nothing was checked or stored: a refresh rotates the token and the new ' +
      'one could not be saved. Start Redis or fix REDIS_URL, then run the command again.',
  );
}

/** Opens the pool, or prints why the state store cannot be used and returns the exit code. */
async function withPool(config: Config, task: (cli: CliPool) => Promise<number>): Promise<number> {
  let cli: CliPool;
  try {
    cli = await openPool(config);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return STORE_UNAVAILABLE_EXIT;
  }
  try {
    return await task(cli);
  } finally {
    await cli.close();
  }
}

export function formatChecks(checks: AccountCheck[]): string {
  const rows = [['account', 'dialect', 'kind', 'state', 'access expires', 'detail']];
  for (const check of checks) {
    rows.push([
      check.id,
      check.dialect,
      check.isShortLived ? `${check.kind} (short-lived)` : check.kind,
      check.state,
      check.accessExpiresAt ? new Date(check.accessExpiresAt).toISOString() : '-',
      check.error ?? check.invalidReason ?? (check.profile ? `user ${check.profile.userId}` : ''),
    ]);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join(' | ').trimEnd()).join('\n');
}

export async function runCheckCommand(config: Config): Promise<number> {
  return withPool(config, async ({ pool }) => {
    const accounts = pool.serverAccounts();
    if (accounts.length === 0) {
      process.stderr.write('No accounts configured: set KIMI_TOKENS or KIMI_TOKENS_FILE, or run add-account.\n');
      return 2;
    }
    const checks = await pool.checkAccounts(accounts, AbortSignal.timeout(60_000));
    process.stdout.write(`${formatChecks(checks)}\n`);
    return checks.every((check) => check.state === 'live') ? 0 : 1;
  });
}

export async function runAddAccountCommand(config: Config, argumentText: string): Promise<number> {
  const text = argumentText.trim() || (process.stdin.isTTY ? '' : await readStdin());
  if (!text) {
    process.stderr.write('Give the token, cookie, localStorage JSON or cURL command as an argument or on stdin.\n');
    return 2;
  }
  return withPool(config, async ({ pool, store }) => {
    try {
      const imported = await importAccount(pool, text, AbortSignal.timeout(60_000), { store });
      for (const warning of imported.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(`Added account ${imported.account.id} (${imported.account.dialect} dialect, from ${imported.source}); a running gateway uses it within 5 s.\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
  });
}

/** `add-account --qr`: the QR code in the terminal, then the confirmed tokens go through the same import. */
export async function runQrLoginCommand(config: Config, output: NodeJS.WritableStream = process.stdout): Promise<number> {
  return withPool(config, async ({ pool, store }) => {
    const http = createUpstreamHttpFromConfig(config, 'Mozilla/5.0 (compatible; kimi-free-api)');
    try {
      const login = await startQrLogin({ authUrl: config.KIMI_AUTH_URL, http, clientVersion: config.KIMI_CLIENT_VERSION });
      output.write(`${qrLoginInstructions(login)}\n`);
      const tokens = await login.poll(AbortSignal.timeout(10 * 60_000), (status) => {
        if (status === 'scanned') output.write('Scanned; confirm the login in the Kimi app.\n');
      });
      const imported = await importAccount(pool, tokens.refreshToken, AbortSignal.timeout(60_000), { store });
      output.write(`Added account ${imported.account.id} (${imported.account.dialect} dialect, by QR login); a running gateway uses it within 5 s.\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      process.stderr.write(`${error.message}\n`);
      return 1;
    } finally {
      await http.close();
    }
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
