/**
 * @module doctor/account-steps
 * The protocol steps for one account, in order, through the real dialect code (so the doctor tests what users
 * run): refresh, current user, model catalogue, a one-word chat, delete that chat. Each step's wire exchange is
 * then checked strictly (shape-checks.ts) and turned into one table row.
 */
import { classifyCredential, type ClassifiedCredential } from '../accounts/classify-credential.ts';
import { accountIdFor } from '../accounts/account.ts';
import { AuthenticationError } from '../errors.ts';
import { eachEvent, type CatalogModel, type DialectName, type KimiDialect, type ModelChoice, type Session } from '../upstream/dialect.ts';
import type { AccountStep, DoctorRow } from './doctor-types.ts';
import { explainFailure, failureDetail } from './explain-failure.ts';
import { checkShapes } from './shape-checks.ts';
import type { WireTap } from './wire-tap.ts';

/** Where the doctor gets an account's latest token and leaves a rotated one (§10.2: persist before use). */
export interface DoctorTokenAccess {
  /** The token to use for a configured token: the latest rotated refresh token when one was stored. */
  currentToken(configuredToken: string): Promise<string>;
  saveRotation(configuredToken: string, rotation: { refreshToken: string; refreshExpiresAt?: number; dialect: DialectName }): Promise<void>;
  /** Runs the read-refresh-save sequence under the account's refresh lock, so the gateway does not refresh at the same time. */
  runExclusive?<T>(configuredToken: string, run: () => Promise<T>): Promise<T>;
}

export interface AccountStepContext {
  dialects: Record<DialectName, KimiDialect>;
  tap: WireTap;
  dialectMode: 'auto' | DialectName;
  tokens?: DoctorTokenAccess;
  /** Secret value → label, for redacting fixtures. */
  secrets: Map<string, string>;
  /** The unknown things the dialects reported during the current step. */
  unknowns: string[];
  signal: AbortSignal;
  stepTimeoutMs: number;
  prompt: string;
  clock: () => number;
}

interface StepOutcome {
  detail: string;
}

export async function runAccountSteps(configuredToken: string, context: AccountStepContext): Promise<DoctorRow[]> {
  let classified: ClassifiedCredential;
  try {
    classified = classifyCredential(configuredToken, { dialectMode: context.dialectMode, now: context.clock() });
  } catch (error) {
    const row: DoctorRow = { step: 'refresh', target: accountIdFor(configuredToken.trim()), result: 'FAIL', ms: 0, detail: `§3.4: the configured token is unusable: ${(error as Error).message}` };
    return [row, ...skipAll(['current-user', 'models', 'chat', 'delete-chat'], row.target, 'refresh')];
  }
  const target = accountIdFor(classified.token);
  context.secrets.set(configuredToken.trim(), '[configured-token]');
  context.secrets.set(classified.token, '[configured-token]');
  let dialectName: DialectName = classified.dialect;
  let session: Session | undefined;
  let models: CatalogModel[] = [];
  let conversationId: string | undefined;
  const rows: DoctorRow[] = [];
  const step = async (name: AccountStep, run: (signal: AbortSignal) => Promise<StepOutcome>) => {
    const row = await runStep(name, target, () => dialectName, run, context);
    rows.push(row);
    return row.result === 'ok';
  };

  await step('refresh', (signal) => exclusive(context.tokens, classified.token, async () => {
    const latest = (await context.tokens?.currentToken(classified.token)) ?? classified.token;
    context.secrets.set(latest, '[refresh-token]');
    if (classified.kind === 'access') {
      session = context.dialects[dialectName].sessionFromAccessToken(latest);
      return { detail: accessTokenDetail(session, context.clock()) };
    }
    const refresh = async (name: DialectName) => context.dialects[name].refreshSession(latest, signal);
    let grant;
    try {
      grant = await refresh(dialectName);
    } catch (error) {
      // §10.1: a user-center refresh JWT the legacy host refuses may still refresh on the current host.
      if (!(error instanceof AuthenticationError) || !classified.fallbackDialect) throw error;
      dialectName = classified.fallbackDialect;
      grant = await refresh(dialectName);
    }
    session = grant;
    rememberSession(context, grant);
    let saved = 'not rotated';
    if (grant.refreshToken) {
      context.secrets.set(grant.refreshToken, '[refresh-token]');
      saved = context.tokens ? 'rotated and saved' : 'rotated (not saved: no state store)';
      await context.tokens?.saveRotation(classified.token, { refreshToken: grant.refreshToken, refreshExpiresAt: grant.refreshExpiresAt, dialect: dialectName });
    }
    return { detail: `${dialectName} dialect; access token valid ${minutesLeft(grant.accessExpiresAt, context.clock())}; refresh token ${saved}` };
  }));
  // A failed refresh row that still produced a session (a fallback path answered) lets the other steps run.
  if (!session) return [...rows, ...skipAll(['current-user', 'models', 'chat', 'delete-chat'], target, 'refresh')];
  const live = session;

  await step('current-user', async (signal) => {
    const profile = await context.dialects[dialectName].checkSession(live, signal);
    context.secrets.set(profile.userId, '[user-id]');
    const facts = [profile.region && `region ${profile.region}`, profile.membershipLevel && `membership ${profile.membershipLevel}`].filter(Boolean);
    return { detail: `signed in${facts.length ? ` (${facts.join(', ')})` : ''}` };
  });

  await step('models', async (signal) => {
    models = await context.dialects[dialectName].listModels(live, signal);
    if (models.length === 0) throw new Error('the catalogue is empty');
    const names = models.slice(0, 4).map((model) => model.id).join(', ');
    return { detail: `${models.length} model${models.length === 1 ? '' : 's'}: ${names}${models.length > 4 ? ', …' : ''}` };
  });

  await step('chat', async (signal) => {
    let text = '';
    const batches = context.dialects[dialectName].streamReply(live, { text: context.prompt, model: doctorModel(dialectName, models), files: [] }, { citations: 'strip' }, signal);
    for await (const event of eachEvent(batches)) {
      if (event.type === 'conversation-start') conversationId = event.conversationId;
      else if (event.type === 'text-delta') text += event.text;
    }
    const said = text.replace(/\s+/g, ' ').trim();
    return { detail: `answered "${said.length > 40 ? `${said.slice(0, 37)}…` : said}"${conversationId ? '' : ' (no chat id)'}` };
  });

  const chatId = conversationId;
  if (chatId === undefined) return [...rows, ...skipAll(['delete-chat'], target, 'chat', 'the chat step gave no chat id; a chat may be left on the account')];
  await step('delete-chat', async (signal) => {
    await context.dialects[dialectName].deleteConversation(live, chatId, signal);
    return { detail: 'the test chat is deleted' };
  });
  return rows;
}

/** Runs one step with its own timeout, then judges it by the outcome and the strict checks of its exchanges. */
async function runStep(
  step: AccountStep,
  target: string,
  dialect: () => DialectName,
  run: (signal: AbortSignal) => Promise<StepOutcome>,
  context: AccountStepContext,
): Promise<DoctorRow> {
  context.tap.setStep(step, target);
  context.unknowns.length = 0;
  const firstExchange = context.tap.exchanges.length;
  const started = performance.now();
  let outcome: StepOutcome | undefined;
  let failure: unknown;
  try {
    outcome = await run(AbortSignal.any([context.signal, AbortSignal.timeout(context.stepTimeoutMs)]));
  } catch (error) {
    failure = error;
  }
  const ms = Math.round(performance.now() - started);
  const exchanges = context.tap.exchanges.slice(firstExchange);
  const shapes = checkShapes(step, dialect(), exchanges);
  const drift = [...new Set([...context.unknowns, ...shapes.drift])];
  const row: DoctorRow = { step, target, result: 'ok', ms, detail: outcome?.detail ?? '' };
  if (drift.length > 0) row.drift = drift;
  if (failure !== undefined || shapes.findings.some((finding) => finding.isFatal)) {
    const finding = explainFailure(step, dialect(), failure, exchanges, shapes.findings);
    // A refresh that FAILs a strict check may still have rotated the token: say whether the new one was kept.
    const kept = step === 'refresh' && outcome ? `; ${outcome.detail}` : '';
    return { ...row, result: 'FAIL', detail: withDrift(`${failureDetail(finding, failure)}${kept}`, drift), section: finding.section, expected: finding.expected, observed: finding.observed };
  }
  const notes = shapes.findings.map((finding) => `${finding.section} expected ${finding.expected}, got ${finding.observed}`);
  return { ...row, detail: withDrift([row.detail, ...notes].filter(Boolean).join('; '), drift) };
}

function exclusive<T>(tokens: DoctorTokenAccess | undefined, token: string, run: () => Promise<T>): Promise<T> {
  return tokens?.runExclusive ? tokens.runExclusive(token, run) : run();
}

function withDrift(detail: string, drift: string[]): string {
  return drift.length === 0 ? detail : `${detail}; upstream sent unknown ${drift.slice(0, 6).join(', ')}${drift.length > 6 ? ', …' : ''}`;
}

function skipAll(steps: AccountStep[], target: string, because: string, why?: string): DoctorRow[] {
  return steps.map((step) => ({ step, target, result: 'skip' as const, ms: 0, detail: why ? `not run: ${why}` : `not run: ${because} failed` }));
}

function rememberSession(context: AccountStepContext, session: Session): void {
  context.secrets.set(session.accessToken, '[access-token]');
  const { userId, deviceId, sessionId } = session.identity;
  if (userId) context.secrets.set(userId, '[user-id]');
  if (deviceId) context.secrets.set(deviceId, '[device-id]');
  if (sessionId) context.secrets.set(sessionId, '[session-id]');
}

function minutesLeft(expiresAt: number | undefined, now: number): string {
  if (expiresAt === undefined) return 'for an unstated time';
  const minutes = Math.round((expiresAt - now) / 60_000);
  return minutes >= 120 ? `${Math.round(minutes / 60)} h` : `${minutes} min`;
}

function accessTokenDetail(session: Session, now: number): string {
  if (session.accessExpiresAt !== undefined && session.accessExpiresAt <= now) {
    throw new AuthenticationError('§9 D2: this access token has expired and cannot be refreshed; add a refresh token instead.');
  }
  return `access token only: valid ${minutesLeft(session.accessExpiresAt, now)}, cannot be refreshed (§9 D2)`;
}

/** Current dialect: the plain chat model of the catalogue (§3.5 `SCENARIO_CHAT`); legacy: the default chat. */
function doctorModel(dialect: DialectName, models: CatalogModel[]): ModelChoice {
  const plain: ModelChoice = { publicId: 'doctor', thinking: false, search: false, silentSearch: false };
  if (dialect !== 'current') return plain;
  const chat = models.find((model) => model.scenario === 'SCENARIO_CHAT') ?? models.find((model) => !model.kimiplusId);
  return chat ? { ...plain, upstreamModel: chat.id, ...(chat.scenario ? { scenario: chat.scenario } : {}) } : plain;
}
