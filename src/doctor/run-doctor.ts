/**
 * @module doctor/run-doctor
 * `doctor` (issue 10): reach every Kimi host the configured accounts need, then run the protocol steps for
 * each account through the real dialects over a wire tap, and report one row per step — with, on failure, the
 * expected and observed shape and the protocol-spec section contradicted. Optionally records the redacted
 * exchange as fixtures.
 */
import { classifyCredential } from '../accounts/classify-credential.ts';
import { createConnectDialect } from '../upstream/connect/connect-dialect.ts';
import type { DialectName, KimiDialect } from '../upstream/dialect.ts';
import { createLegacyDialect } from '../upstream/legacy/legacy-dialect.ts';
import { createUpstreamHttp, type UpstreamHttp } from '../upstream/upstream-http.ts';
import { runAccountSteps, type DoctorTokenAccess } from './account-steps.ts';
import type { DoctorReport, DoctorRow } from './doctor-types.ts';
import { reachHost } from './reach-hosts.ts';
import type { Recorder } from './recorder.ts';
import { fixtureFromExchange } from './wire-fixture.ts';
import { createWireTap } from './wire-tap.ts';

export type { DoctorTokenAccess } from './account-steps.ts';

export interface DoctorOptions {
  /** Kimi tokens to check (refresh tokens, access JWTs, optional `current:` / `legacy:` prefix). */
  accounts: string[];
  baseUrl: string;
  authUrl: string;
  legacyBaseUrl: string;
  /** `KIMI_DIALECT`. */
  dialectMode: 'auto' | DialectName;
  /** Shared client; default a private one with 10 s connect and 60 s first-byte/idle timeouts, closed at the end. */
  http?: UpstreamHttp;
  /** Receives every exchange, redacted, once the run is over (`--record DIR`). */
  record?: Recorder;
  /** Local clock (epoch ms) for the skew check and token lifetimes. Default Date.now. */
  clock?: () => number;
  /** The state store's view of the accounts, so a rotated token is read and saved (§10.2). */
  tokens?: DoctorTokenAccess;
  signal?: AbortSignal;
  /** Upper bound of one step. Default 60 000 ms. */
  stepTimeoutMs?: number;
  /** The one-word chat. */
  prompt?: string;
  /** `x-msh-version` etc. as the gateway sends them. */
  clientVersion?: string;
  language?: string;
  timeZone?: string;
}

export const doctorPrompt = 'Reply with exactly one word: OK';

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const startedAt = Date.now();
  const clock = options.clock ?? Date.now;
  const ownHttp = options.http ? undefined : createUpstreamHttp({ connectTimeoutMs: 10_000, firstByteTimeoutMs: 60_000, idleTimeoutMs: 60_000, defaultRetryAfterMs: 60_000, userAgent: 'Mozilla/5.0 (compatible; kimi-free-api doctor)' });
  const tap = createWireTap(options.http ?? ownHttp!);
  const unknowns: string[] = [];
  const allDrift = new Set<string>();
  const onUnknown = (kind: string, name: string) => {
    unknowns.push(`${kind}:${name}`);
    allDrift.add(`${kind}:${name}`);
  };
  const dialects: Record<DialectName, KimiDialect> = {
    current: createConnectDialect({
      baseUrl: options.baseUrl,
      authUrl: options.authUrl,
      http: tap.http,
      onUnknown,
      ...(options.clientVersion ? { clientVersion: options.clientVersion } : {}),
      ...(options.language ? { language: options.language } : {}),
      ...(options.timeZone ? { timeZone: options.timeZone } : {}),
    }),
    legacy: createLegacyDialect({ baseUrl: options.legacyBaseUrl, http: tap.http, onUnknown, checkResearchQuota: false, ...(options.timeZone ? { timeZone: options.timeZone } : {}) }),
  };
  const signal = options.signal ?? new AbortController().signal;
  const secrets = new Map<string, string>();
  const rows: DoctorRow[] = [];
  try {
    for (const origin of hostsFor(options)) {
      rows.push(...(await reachHost(origin, { http: tap.http, clock, signal, onStep: (step, target) => tap.setStep(step, target) })));
    }
    for (const token of options.accounts) {
      const context = { dialects, tap, dialectMode: options.dialectMode, tokens: options.tokens, secrets, unknowns, signal, stepTimeoutMs: options.stepTimeoutMs ?? 60_000, prompt: options.prompt ?? doctorPrompt, clock };
      rows.push(...(await runAccountSteps(token, context)));
    }
    if (options.record) {
      for (const exchange of tap.exchanges) await options.record.record(fixtureFromExchange(exchange, secrets));
    }
  } finally {
    await ownHttp?.close();
  }
  for (const row of rows) for (const name of row.drift ?? []) allDrift.add(name);
  return { ok: rows.every((row) => row.result !== 'FAIL'), startedAt: new Date(startedAt).toISOString(), durationMs: Date.now() - startedAt, rows, drift: [...allDrift].sort() };
}

/** The origins the configured accounts will talk to (all of them for the mode when no account parses). */
function hostsFor(options: DoctorOptions): string[] {
  const dialects = new Set<DialectName>();
  for (const token of options.accounts) {
    try {
      const classified = classifyCredential(token, { dialectMode: options.dialectMode });
      dialects.add(classified.dialect);
      if (classified.fallbackDialect) dialects.add(classified.fallbackDialect);
    } catch {
      // An unusable token fails in its own refresh row.
    }
  }
  if (dialects.size === 0) {
    if (options.dialectMode !== 'legacy') dialects.add('current');
    if (options.dialectMode !== 'current') dialects.add('legacy');
  }
  const origins = [
    ...(dialects.has('current') ? [options.baseUrl, options.authUrl] : []),
    ...(dialects.has('legacy') ? [options.legacyBaseUrl] : []),
  ].map((url) => new URL(url).origin);
  return [...new Set(origins)];
}
