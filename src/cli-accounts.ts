/**
 * @module cli-accounts
 * `check` (one row per configured account: hash, dialect, state, expiry) and `add-account` (pasted
 * token, cookie, localStorage JSON or cURL → checked live → stored; a running gateway picks it up
 * within 5 s). Never prints a token.
 */
import { createAccountPool, type AccountCheck, type AccountPool } from './accounts/account-pool.ts';
import { importAccount } from './accounts/import-account.ts';
import { qrLoginInstructions, startQrLogin } from './accounts/qr-login.ts';
import { GatewayError } from './errors.ts';
import type { Config } from './config.ts';
import { createLogger } from './log.ts';
import { openStateStore } from './store/open-state-store.ts';
import type { StateStore } from './store/state-store.ts';
import { createDialectsFromConfig, createUpstreamHttpFromConfig } from './composition.ts';

interface CliPool {
  pool: AccountPool;
  close(): Promise<void>;
}

async function openPool(config: Config): Promise<CliPool> {
  const log = createLogger({ level: 'warn', destination: process.stderr });
  const http = createUpstreamHttpFromConfig(config, 'Mozilla/5.0 (compatible; kimi-free-api)');
  const dialects = createDialectsFromConfig(config, http);
  const store: StateStore = await openStateStore({ redisUrl: config.REDIS_URL, stateFilePath: config.STATE_FILE, log });
  const pool = createAccountPool({ store, dialects, dialectMode: config.KIMI_DIALECT, reloadIntervalMs: 0, sweepIntervalMs: 0, log });
  await pool.addServerAccounts(config.serverTokens);
  return {
    pool,
    async close() {
      await pool.close();
      await store.close();
      await http.close();
    },
  };
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
  const { pool, close } = await openPool(config);
  try {
    const accounts = pool.serverAccounts();
    if (accounts.length === 0) {
      process.stderr.write('No accounts configured: set KIMI_TOKENS or KIMI_TOKENS_FILE, or run add-account.\n');
      return 2;
    }
    const checks = await pool.checkAccounts(accounts, AbortSignal.timeout(60_000));
    process.stdout.write(`${formatChecks(checks)}\n`);
    return checks.every((check) => check.state === 'live') ? 0 : 1;
  } finally {
    await close();
  }
}

export async function runAddAccountCommand(config: Config, argumentText: string): Promise<number> {
  const text = argumentText.trim() || (process.stdin.isTTY ? '' : await readStdin());
  if (!text) {
    process.stderr.write('Give the token, cookie, localStorage JSON or cURL command as an argument or on stdin.\n');
    return 2;
  }
  const { pool, close } = await openPool(config);
  try {
    const imported = await importAccount(pool, text, AbortSignal.timeout(60_000));
    for (const warning of imported.warnings) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write(`Added account ${imported.account.id} (${imported.account.dialect} dialect, from ${imported.source}); a running gateway uses it within 5 s.\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  } finally {
    await close();
  }
}

/** `add-account --qr`: the QR code in the terminal, then the confirmed tokens go through the same import. */
export async function runQrLoginCommand(config: Config, output: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { pool, close } = await openPool(config);
  const http = createUpstreamHttpFromConfig(config, 'Mozilla/5.0 (compatible; kimi-free-api)');
  try {
    const login = await startQrLogin({ authUrl: config.KIMI_AUTH_URL, http, clientVersion: config.KIMI_CLIENT_VERSION });
    output.write(`${qrLoginInstructions(login)}\n`);
    const tokens = await login.poll(AbortSignal.timeout(10 * 60_000), (status) => {
      if (status === 'scanned') output.write('Scanned; confirm the login in the Kimi app.\n');
    });
    const imported = await importAccount(pool, tokens.refreshToken, AbortSignal.timeout(60_000));
    output.write(`Added account ${imported.account.id} (${imported.account.dialect} dialect, by QR login); a running gateway uses it within 5 s.\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  } finally {
    await http.close();
    await close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
