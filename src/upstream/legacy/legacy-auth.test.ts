/**
 * @module upstream/legacy/legacy-auth.test
 * Pins the legacy refresh exchange with rotation, the user lookup and the derived headers (spec §2.1, §2.2, §10.2).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AuthenticationError } from '../../errors.ts';
import { deriveLegacyIdentity, fetchLegacyProfile, legacyHeaders, legacySessionFromAccessToken, refreshLegacySession } from './legacy-auth.ts';
import type { LegacyContext } from './legacy-rest.ts';
import { createTestHttp, fakeJwt, readFixture, sendJson, startLoopbackServer, type LoopbackServer } from './legacy-test-server.ts';

describe('legacy auth over loopback (§2.2)', () => {
  let server: LoopbackServer;
  let context: LegacyContext;
  const oldRefresh = fakeJwt({ iss: 'user-center', typ: 'refresh', sub: 'cuser00000000000000a', exp: 2_000_000_000 });
  const newRefresh = fakeJwt({ iss: 'user-center', typ: 'refresh', sub: 'cuser00000000000000a', exp: 2_100_000_000 });
  const access = fakeJwt({ iss: 'user-center', typ: 'access', sub: 'cuser00000000000000a', exp: 1_900_000_000 });

  before(async () => {
    server = await startLoopbackServer();
    context = { baseUrl: server.url, http: createTestHttp(), timeZone: 'Asia/Shanghai', defaultRetryAfterMs: 45_000, onUnknown: () => {} };
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.routes.clear();
    server.routes.set('GET /api/user', (_request, response) => sendJson(response, 200, { id: 'cuser00000000000000a', name: 'Tester', status: 'normal' }));
  });
  after(async () => {
    await context.http.close();
    await server.close();
  });

  it('returns the rotated refresh token and the user id behind X-Traffic-Id (§10.2)', async () => {
    server.routes.set('GET /api/auth/token/refresh', (_request, response) => sendJson(response, 200, { access_token: access, refresh_token: newRefresh }));
    const grant = await refreshLegacySession(context, oldRefresh, AbortSignal.timeout(5_000));
    assert.equal(grant.refreshToken, newRefresh);
    assert.equal(grant.refreshExpiresAt, 2_100_000_000_000);
    assert.equal(grant.accessToken, access);
    assert.equal(grant.accessExpiresAt, 1_900_000_000_000);
    assert.deepEqual(grant.identity, deriveLegacyIdentity('cuser00000000000000a'));
    const [refreshCall, userCall] = server.requests;
    assert.equal(refreshCall.headers.authorization, `Bearer ${oldRefresh}`);
    // The refresh call already presents the account's stable ids, taken from the refresh token's `sub`.
    assert.equal(refreshCall.headers['x-msh-device-id'], deriveLegacyIdentity('cuser00000000000000a').deviceId);
    assert.equal(userCall.path, '/api/user');
    assert.equal(userCall.headers.authorization, `Bearer ${access}`);
    assert.equal(userCall.headers['x-traffic-id'], 'cuser00000000000000a');
  });

  it('reports no rotation when the same refresh token comes back', async () => {
    server.routes.set('GET /api/auth/token/refresh', (_request, response) => sendJson(response, 200, { access_token: access, refresh_token: oldRefresh }));
    const grant = await refreshLegacySession(context, oldRefresh, AbortSignal.timeout(5_000));
    assert.equal(grant.refreshToken, undefined);
  });

  it('keeps a rotated refresh token even when GET /api/user fails afterwards', async () => {
    server.routes.set('GET /api/auth/token/refresh', (_request, response) => sendJson(response, 200, { access_token: access, refresh_token: newRefresh }));
    server.routes.set('GET /api/user', (_request, response) => sendJson(response, 500, { message: 'down' }));
    const grant = await refreshLegacySession(context, oldRefresh, AbortSignal.timeout(5_000));
    assert.equal(grant.refreshToken, newRefresh);
    assert.equal(grant.identity.userId, 'cuser00000000000000a');
  });

  it('maps refresh HTTP 400 to a banned-account AuthenticationError without echoing the token (§2.2)', async () => {
    server.routes.set('GET /api/auth/token/refresh', (_request, response) => sendJson(response, 400, { message: 'blocked' }));
    await assert.rejects(refreshLegacySession(context, oldRefresh, AbortSignal.timeout(5_000)), (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.match(error.message, /banned or blocked/);
      assert.equal(error.message.includes(oldRefresh), false);
      return true;
    });
  });

  it('maps the §2.6 (e) 401 body to invalid_token', async () => {
    server.routes.set('GET /api/auth/token/refresh', (_request, response) => {
      response.writeHead(401, { 'content-type': 'application/json' }).end(readFixture('e-auth-failure.json'));
    });
    await assert.rejects(refreshLegacySession(context, oldRefresh, AbortSignal.timeout(5_000)), (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.code, 'invalid_token');
      assert.equal(error.upstreamReason, 'auth.token.invalid');
      return true;
    });
  });

  it('fetchLegacyProfile reads id and name', async () => {
    const profile = await fetchLegacyProfile(context, legacySessionFromAccessToken(access), AbortSignal.timeout(5_000));
    assert.deepEqual(profile, { userId: 'cuser00000000000000a', name: 'Tester' });
  });
});

describe('legacy identity and headers (§2.1)', () => {
  const context: LegacyContext = {
    baseUrl: 'https://kimi.moonshot.cn',
    http: undefined as never,
    timeZone: 'Europe/Berlin',
    defaultRetryAfterMs: 1,
    onUnknown: () => {},
  };

  it('derives stable 19-digit device and session ids per user', () => {
    const first = deriveLegacyIdentity('user-a');
    assert.deepEqual(deriveLegacyIdentity('user-a'), first);
    assert.match(first.deviceId ?? '', /^7\d{18}$/);
    assert.match(first.sessionId ?? '', /^17\d{17}$/);
    assert.notEqual(deriveLegacyIdentity('user-b').deviceId, first.deviceId);
  });

  it('sends the browser-like header set, with the chat in the Referer', () => {
    const session = legacySessionFromAccessToken(fakeJwt({ sub: 'user-a', exp: 1 }));
    const headers = legacyHeaders(context, session, { chatId: 'cr0000000000000000ab' });
    assert.deepEqual(headers, {
      Authorization: `Bearer ${session.accessToken}`,
      'X-Msh-Platform': 'web',
      'X-Msh-Device-Id': deriveLegacyIdentity('user-a').deviceId,
      'X-Msh-Session-Id': deriveLegacyIdentity('user-a').sessionId,
      'R-Timezone': 'Europe/Berlin',
      Origin: 'https://kimi.moonshot.cn',
      Referer: 'https://kimi.moonshot.cn/chat/cr0000000000000000ab',
      'X-Traffic-Id': 'user-a',
    });
  });

  it('derives the ids from the user id when a stored identity holds only the user id', () => {
    const session = { dialect: 'legacy' as const, accessToken: 'rotating-token-1', accessExpiresAt: undefined, identity: { userId: 'user-a' } };
    const headers = legacyHeaders(context, session);
    assert.equal(headers['X-Msh-Device-Id'], deriveLegacyIdentity('user-a').deviceId);
    assert.equal(legacyHeaders(context, { ...session, accessToken: 'rotating-token-2' })['X-Msh-Session-Id'], headers['X-Msh-Session-Id']);
  });

  it('keeps device ids stable per token when the token names no user', () => {
    const session = legacySessionFromAccessToken('opaque-token');
    assert.deepEqual(session.identity, {});
    const first = legacyHeaders(context, session);
    assert.equal(first['X-Traffic-Id'], undefined);
    assert.equal(legacyHeaders(context, session)['X-Msh-Device-Id'], first['X-Msh-Device-Id']);
    assert.match(first['X-Msh-Device-Id'], /^7\d{18}$/);
  });
});
