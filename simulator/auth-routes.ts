/**
 * @module simulator/auth-routes
 * Token refresh (spec §3.4, §2.2, §9 D3): the account service's `RefreshToken` RPC and the REST
 * `GET /api/auth/token/refresh`. Both rotate both tokens; a rotated-away refresh token works once more within
 * the grace window, then answers 401 "invalid claims".
 */
import { answerRefreshDrift } from './drift.ts';
import { field, LEGACY_AUTH_MESSAGE, readJsonObject, sendConnectError, sendJson, sendLegacyError, sleep, type RouteContext } from './http-io.ts';
import type { RefreshOutcome } from './state.ts';
import { bearerToken, peekSubject } from './tokens.ts';

const SLOW_REFRESH_MS = 300;

/** Applies the refresh scenarios; returns false when the request was answered (refresh-fails) or aborted. */
async function refreshScenario(context: RouteContext, token: string | undefined): Promise<'continue' | 'fail' | 'aborted'> {
  const scenario = context.scenarios.take('refresh', peekSubject(token));
  context.record.scenario = scenario;
  if (scenario === 'refresh-fails') return 'fail';
  if (scenario === 'slow-refresh' && !(await sleep(SLOW_REFRESH_MS, context.signal))) return 'aborted';
  return 'continue';
}

function failureMessage(outcome: Extract<RefreshOutcome, { ok: false }>): string {
  return outcome.problem === 'expired' ? 'token is expired' : 'invalid claims';
}

/** POST /api/account.gateway.v1.AuthService/RefreshToken `{"refresh_token"}` or `{"refreshToken"}`. */
export async function handleRefreshTokenRpc(context: RouteContext): Promise<void> {
  const body = await readJsonObject(context);
  if (!body) return;
  const token = field(body, 'refresh_token', 'refreshToken');
  if (typeof token !== 'string' || token === '') {
    sendConnectError(context.res, 'invalid_argument', 'refresh_token is required');
    return;
  }
  const step = await refreshScenario(context, token);
  if (step === 'aborted' || answerRefreshDrift(context, context.record.scenario)) return;
  if (step === 'fail') {
    sendConnectError(context.res, 'unauthenticated', 'invalid claims');
    return;
  }
  const outcome = context.state.refresh(token, ['account']);
  if (!outcome.ok) {
    sendConnectError(context.res, 'unauthenticated', failureMessage(outcome));
    return;
  }
  context.record.userId = outcome.account.userId;
  sendJson(context.res, 200, { accessToken: outcome.accessToken, refreshToken: outcome.refreshToken });
}

/** GET /api/auth/token/refresh with `Authorization: Bearer <refresh token>` (either family). */
export async function handleRestRefresh(context: RouteContext): Promise<void> {
  const token = bearerToken(context.req.headers.authorization);
  const step = await refreshScenario(context, token);
  if (step === 'aborted') return;
  const outcome = step === 'fail' || !token ? undefined : context.state.refresh(token, ['account', 'user-center']);
  if (!outcome?.ok) {
    sendLegacyError(context.res, 401, 'auth.token.invalid', LEGACY_AUTH_MESSAGE, outcome ? failureMessage(outcome) : 'invalid claims');
    return;
  }
  context.record.userId = outcome.account.userId;
  sendJson(context.res, 200, { access_token: outcome.accessToken, refresh_token: outcome.refreshToken });
}
