/**
 * @module config
 * Every setting of the gateway: one zod schema with a documented default per field. Sources are a
 * JSON config file (optional) and the environment; the environment wins. Names follow
 * ../shared/contract.md. An unknown KIMI_* key or an invalid value fails at start, naming the key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Whole numbers written in decimal: Number() would also take "0x10", "1e3" or "0b11" for a port or a timeout. */
const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : value),
    z.number({ error: 'expected a whole number in decimal digits' }).int().min(min).max(max),
  );
/** The longest delay a Node timer holds; a larger one fires at once (TimeoutOverflowWarning), not later. */
const maxTimerMs = 2 ** 31 - 1;
const milliseconds = (min: number) => integer(min, maxTimerMs);
const flag = z
  .union([z.boolean(), z.string()])
  .transform((value, context) => {
    if (typeof value === 'boolean') return value;
    const normalised = value.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(normalised)) return true;
    if (['', '0', 'false', 'no', 'off'].includes(normalised)) return false;
    context.addIssue({ code: 'custom', message: 'expected 1/0, true/false, yes/no or on/off' });
    return z.NEVER;
  });
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((value) => (Array.isArray(value) ? value : value.split(/[\n,]/)).map((item) => item.trim()).filter(Boolean));
const httpUrl = z
  .string()
  .url()
  .refine((value) => /^https?:\/\//.test(value), 'must be an http(s) URL')
  .transform((value) => value.replace(/\/+$/, ''));

/** Checked with the other settings, so `serve`, `doctor` and `check` refuse a broken map alike (exit 2), before starting. */
function isJsonObject(text: string | undefined): boolean {
  if (text === undefined) return true;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Setting name → schema. The order here is the order of the README's configuration table. */
export const settingsSchema = z.object({
  PORT: integer(0, 65535).default(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  KIMI_BASE_URL: httpUrl.default('https://www.kimi.com'),
  KIMI_AUTH_URL: httpUrl.default('https://auth.kimi.com'),
  KIMI_LEGACY_BASE_URL: httpUrl.default('https://kimi.moonshot.cn'),
  KIMI_DIALECT: z.enum(['auto', 'current', 'legacy']).default('auto'),
  KIMI_TOKENS: list.default([]),
  KIMI_TOKENS_FILE: z.string().optional(),
  API_KEYS: list.default([]),
  STATE_FILE: z.string().min(1).default('./data/state.json'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  CHAT_RETENTION_SECONDS: integer(-1).default(600),
  ATTACHMENT_MAX_BYTES: integer(1).default(104_857_600),
  ATTACHMENT_PARSE_TIMEOUT_MS: milliseconds(100).default(120_000),
  ALLOW_PRIVATE_ATTACHMENT_URLS: flag.default(false),
  ACCOUNT_MAX_CONCURRENCY: integer(1, 64).default(2),
  ACCOUNT_COOLDOWN_MS: milliseconds(0).default(60_000),
  FAILOVER_MAX_ATTEMPTS: integer(1, 10).default(3),
  FAILOVER_BUDGET_MS: milliseconds(100).default(20_000),
  QUEUE_MAX: integer(0).default(100),
  QUEUE_TIMEOUT_MS: milliseconds(0).default(30_000),
  UPSTREAM_CONNECT_TIMEOUT_MS: milliseconds(1).default(10_000),
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS: milliseconds(1).default(60_000),
  UPSTREAM_IDLE_TIMEOUT_MS: milliseconds(1).default(120_000),
  SHUTDOWN_GRACE_MS: milliseconds(0).default(30_000),
  BODY_LIMIT_BYTES: integer(1024).default(150 * 1024 * 1024),
  REQUEST_TIMEOUT_MS: milliseconds(100).default(600_000),
  CORS_ORIGINS: list.default([]),
  TRUST_PROXY: flag.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  KIMI_CLIENT_VERSION: z.string().min(1).default('2.2.0'),
  KIMI_LANGUAGE: z.string().min(1).default('zh-CN'),
  KIMI_TIMEZONE: z.string().min(1).default('Asia/Shanghai'),
  KIMI_CHAT_MODEL: z.string().min(1).default('k2d6-chat'),
  KIMI_CHAT_SCENARIO: z.string().min(1).default('SCENARIO_CHAT'),
  KIMI_THINKING_EFFORT: z.string().min(1).default('REASONING_EFFORT_LOW'),
  KIMI_MODEL_MAP: z.string().optional().refine(isJsonObject, 'must be a JSON object of model id → {upstreamModel, scenario, kimiplusId, agentMode, reasoningEffort, thinking, search}'),
  KIMI_MODEL_CATALOG_TTL_SECONDS: integer(0).default(3600),
});

export type Settings = z.output<typeof settingsSchema>;
export type Config = Readonly<Settings & { serverTokens: readonly string[] }>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const knownKeys = new Set(Object.keys(settingsSchema.shape));
/** Settings with a KIMI_ prefix that are ours but not settings (none today; keep the check strict). */
const ignoredKimiKeys = new Set<string>();

export interface LoadConfigInput {
  env: NodeJS.ProcessEnv;
  /** Path of a JSON config file (CLI `--config`); its keys use the same names as the environment. */
  configFile?: string;
  /** Values given on the command line (e.g. `--port`), overriding the file but not the environment. */
  overrides?: Partial<Record<keyof Settings, string | number | boolean>>;
}

export function loadConfig(input: LoadConfigInput): Config {
  const fromFile = input.configFile ? readConfigFile(input.configFile) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input.env)) {
    if (value === undefined) continue;
    if (knownKeys.has(key)) fromEnv[key] = value;
    else if (key.startsWith('KIMI_') && !ignoredKimiKeys.has(key)) {
      throw new ConfigError(`Unknown setting ${key}. Known KIMI_* settings: ${[...knownKeys].filter((name) => name.startsWith('KIMI_')).join(', ')}.`);
    }
  }
  // A blank value is an unset one: Compose's `X=${X}` and an empty line in an env file mean "use the default", and
  // z.coerce.number() would read "" as 0 (PORT= served on a random port, CHAT_RETENTION_SECONDS= deleted every chat).
  const merged = withoutBlanks({ ...withoutBlanks(fromFile), ...withoutBlanks(input.overrides ?? {}), ...withoutBlanks(fromEnv) });
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0] ?? 'config');
    throw new ConfigError(`Invalid setting ${key}: ${issue.message}.`);
  }
  const settings = parsed.data;
  const fileTokens = settings.KIMI_TOKENS_FILE ? readTokensFile(settings.KIMI_TOKENS_FILE) : [];
  return Object.freeze({ ...settings, serverTokens: Object.freeze([...settings.KIMI_TOKENS, ...fileTokens]) });
}

function withoutBlanks(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== null && !(typeof value === 'string' && value.trim() === '')));
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read config file ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`Config file ${path} is not valid JSON.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`Config file ${path} must hold a JSON object of settings.`);
  }
  for (const key of Object.keys(value)) {
    if (!knownKeys.has(key)) throw new ConfigError(`Unknown setting ${key} in config file ${path}.`);
  }
  return value as Record<string, unknown>;
}

function readTokensFile(path: string): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split(/[\n,]/)
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
  } catch (error) {
    throw new ConfigError(`Cannot read KIMI_TOKENS_FILE ${path}: ${(error as Error).message}`);
  }
}
