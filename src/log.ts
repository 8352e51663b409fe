/**
 * @module log
 * The service logger (pino JSON; pretty when stdout is a TTY) and the helpers that keep secrets out
 * of log records: static redaction paths, a scrubber for JWT- or bearer-shaped text inside
 * messages, and log-safe fingerprints for tokens.
 */
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger };

/** Static paths (cheaper than wildcards, see dependencies.md). */
const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'token',
  'refreshToken',
  'accessToken',
];

export interface LoggerOptions {
  level: string;
  /** Pretty-print for humans; defaults to "stdout is a TTY". */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && options.destination === undefined);
  const base = {
    level: options.level,
    base: undefined,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: { err: serializeError },
  };
  if (pretty) {
    try {
      return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true } } });
    } catch {
      // pino-pretty is optional at runtime (the Docker image omits dev tools); fall back to JSON.
    }
  }
  return pino(base, (options.destination as pino.DestinationStream | undefined) ?? bufferedStdout());
}

/**
 * Standard output, written in batches: a line waits at most `flushMs` or until 4 KiB are pending. One
 * write per line handed each line to libuv's thread pool and back, 5–8 % of a small request's CPU; pino
 * still flushes what is pending when the process exits. If standard output stops draining, lines beyond
 * 16 MiB are dropped rather than held without bound.
 */
function bufferedStdout(flushMs = 200): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: 4096, maxLength: 16 * 1024 * 1024, periodicFlush: flushMs });
}

const jwtPattern = /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}/g;
const bearerPattern = /\b(Bearer\s+)[^\s,"']{8,}/gi;

/** Removes anything shaped like a JWT or a bearer credential from free text. */
export function scrubSecrets(text: string): string {
  return text.replace(jwtPattern, '[redacted-jwt]').replace(bearerPattern, '$1[redacted]');
}

/** Short, stable, non-reversible id for a token, for logs and the account list. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 12);
}

function serializeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: scrubSecrets(String(error)) };
  const record: Record<string, unknown> = {
    type: error.name,
    message: scrubSecrets(error.message),
    stack: error.stack ? scrubSecrets(error.stack) : undefined,
  };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) record.code = code;
  if (error.cause !== undefined) record.cause = serializeError(error.cause);
  return record;
}
