/**
 * @module doctor/explain-failure
 * When a step fails, says what the spec expected, what came back, and which section that contradicts — from
 * the strict findings when there are any, otherwise from the failing HTTP answer or the gateway error.
 */
import { GatewayError } from '../errors.ts';
import type { DialectName } from '../upstream/dialect.ts';
import type { AccountStep, Finding } from './doctor-types.ts';
import { describeAnswer } from './wire-shapes.ts';
import type { WireExchange } from './wire-tap.ts';
import { redactText } from './wire-fixture.ts';

/** What each step expects (the "expected" column) and where the spec says so. */
export const stepExpectations: Record<DialectName, Record<AccountStep, { section: string; expected: string }>> = {
  current: {
    refresh: { section: '§3.4', expected: 'POST …/AuthService/RefreshToken → 200 {"accessToken","refreshToken"}' },
    'current-user': { section: '§3.4', expected: 'POST …/UserService/GetCurrentUser → 200 {"user":{"id"}}' },
    models: { section: '§3.5', expected: 'POST …/ConfigService/GetAvailableModels → 200 {"availableModels":[…]}' },
    chat: { section: '§3.6', expected: 'POST …/ChatService/Chat → a Connect stream with chat.id, block.text, done and an end frame' },
    'delete-chat': { section: '§3.11', expected: 'POST …/kimi.chat.v1.ChatService/DeleteChat → 200' },
  },
  legacy: {
    refresh: { section: '§2.2', expected: 'GET /api/auth/token/refresh → 200 {"access_token","refresh_token"}' },
    'current-user': { section: '§2.2', expected: 'GET /api/user → 200 {"id","status"}' },
    models: { section: '§2.4', expected: 'the built-in legacy model list' },
    chat: { section: '§2.5', expected: 'POST /api/chat, then an SSE stream with cmpl … all_done' },
    'delete-chat': { section: '§2.7', expected: 'DELETE /api/chat/{id} → 200' },
  },
};

/** The finding that best explains a failed step. */
export function explainFailure(step: AccountStep, dialect: DialectName, error: unknown, exchanges: readonly WireExchange[], findings: readonly Finding[]): Finding {
  const strict = findings.find((finding) => finding.isFatal);
  if (strict) return strict;
  const { section, expected } = stepExpectations[dialect][step];
  const failed = exchanges.findLast((exchange) => exchange.error !== undefined || (exchange.status ?? 0) >= 400);
  if (failed) {
    const specific = sectionForAnswer(failed, dialect);
    return { section: specific?.section ?? section, expected: specific?.expected ?? expected, observed: describeAnswer(failed), isFatal: true };
  }
  const message = error instanceof Error ? error.message : String(error);
  const observed = redactText(message.length > 200 ? `${message.slice(0, 197)}…` : message, new Map());
  // An in-stream Connect error names its reason: that is the §3.12 family; anything else contradicts the step's shape.
  const inStream = error instanceof GatewayError && error.upstreamReason !== undefined;
  return { section: inStream ? (dialect === 'current' ? '§3.12' : '§2.8') : section, expected, observed, isFatal: true };
}

/** Which section an HTTP failure points at (headers, auth, limits, errors); undefined for the step's own. */
function sectionForAnswer(exchange: WireExchange, dialect: DialectName): { section: string; expected: string } | undefined {
  const current = dialect === 'current';
  if (exchange.error) return { section: current ? '§3.1' : '§2.1', expected: 'the host to answer' };
  const status = exchange.status ?? 0;
  if (status === 400 && /header/i.test(describeAnswer(exchange))) return { section: current ? '§3.3' : '§2.1', expected: 'the documented request headers to be enough' };
  if (status === 401 || status === 403) return { section: current ? '§3.4' : '§2.2', expected: 'the account\'s token to be accepted (sign in again if it was revoked)' };
  if (status === 429 || status === 503) return { section: current ? '§3.13' : '§2.8', expected: 'no rate limit or overload right now (retry later)' };
  if (status >= 500 && status !== 501) return { section: current ? '§3.12' : '§2.8', expected: 'a successful answer' };
  return undefined;
}

/** The table's detail text for a failure: "§3.6: expected …, got …". */
export function failureDetail(finding: Finding, error?: unknown): string {
  const base = `${finding.section}: expected ${finding.expected}, got ${finding.observed}`;
  // An HTTP answer already says what the gateway error would repeat.
  if (!(error instanceof Error) || finding.observed.startsWith('HTTP ')) return base;
  const said = redactText(error.message, new Map());
  return `${base} (gateway: ${said.length > 140 ? `${said.slice(0, 137)}…` : said})`;
}
