/**
 * @module composition
 * Pieces the composition root and the CLI commands build the same way from a Config: the upstream
 * HTTP client and the config-derived part of a doctor run. One place, so `serve`, `check`,
 * `add-account` and `doctor` talk to Kimi identically.
 */
import type { Config } from './config.ts';
import type { DoctorOptions } from './doctor/run-doctor.ts';
import { createConnectDialect } from './upstream/connect/connect-dialect.ts';
import type { DialectName, KimiDialect } from './upstream/dialect.ts';
import { createLegacyDialect } from './upstream/legacy/legacy-dialect.ts';
import { createUpstreamHttp, type UpstreamHttp } from './upstream/upstream-http.ts';

export function createUpstreamHttpFromConfig(config: Config, userAgent: string): UpstreamHttp {
  return createUpstreamHttp({
    connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
    firstByteTimeoutMs: config.UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
    idleTimeoutMs: config.UPSTREAM_IDLE_TIMEOUT_MS,
    defaultRetryAfterMs: config.ACCOUNT_COOLDOWN_MS,
    userAgent,
  });
}

/** Doctor options that come from settings (hosts, dialect mode, headers); callers add http, tokens, record. */
export function doctorSettingsFrom(config: Config): Pick<DoctorOptions, 'accounts' | 'baseUrl' | 'authUrl' | 'legacyBaseUrl' | 'dialectMode' | 'clientVersion' | 'language' | 'timeZone'> {
  return {
    accounts: [...config.serverTokens],
    baseUrl: config.KIMI_BASE_URL,
    authUrl: config.KIMI_AUTH_URL,
    legacyBaseUrl: config.KIMI_LEGACY_BASE_URL,
    dialectMode: config.KIMI_DIALECT,
    clientVersion: config.KIMI_CLIENT_VERSION,
    language: config.KIMI_LANGUAGE,
    timeZone: config.KIMI_TIMEZONE,
  };
}

/** Both dialects on one HTTP client; `onUnknown` receives upstream drift (unknown events, fields, enums). */
export function createDialectsFromConfig(config: Config, http: UpstreamHttp, onUnknown?: (kind: string, name: string) => void): Record<DialectName, KimiDialect> {
  return {
    current: createConnectDialect({
      baseUrl: config.KIMI_BASE_URL,
      authUrl: config.KIMI_AUTH_URL,
      http,
      clientVersion: config.KIMI_CLIENT_VERSION,
      language: config.KIMI_LANGUAGE,
      timeZone: config.KIMI_TIMEZONE,
      parseTimeoutMs: config.ATTACHMENT_PARSE_TIMEOUT_MS,
      defaultRetryAfterMs: config.ACCOUNT_COOLDOWN_MS,
      onUnknown,
    }),
    legacy: createLegacyDialect({
      baseUrl: config.KIMI_LEGACY_BASE_URL,
      http,
      timeZone: config.KIMI_TIMEZONE,
      parseTimeoutMs: config.ATTACHMENT_PARSE_TIMEOUT_MS,
      defaultRetryAfterMs: config.ACCOUNT_COOLDOWN_MS,
      onUnknown,
    }),
  };
}
