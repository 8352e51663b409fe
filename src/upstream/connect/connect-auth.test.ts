import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AuthenticationError } from '../../errors.ts';
import type { UpstreamHttp } from '../upstream-http.ts';
import { sendJson, startLoopbackServer, testUpstreamHttp, type LoopbackServer } from './__fixtures__/loopback-server.ts';
import { accessToken, makeJwt, refreshToken } from './__fixtures__/test-tokens.ts';
import { connectHeaders, refreshSession, sessionFromAccessToken, type ConnectSettings } from './connect-auth.ts';

describe('connect auth (§3.3, §3.4)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  let settings: ConnectSettings;
  before(async () => {
    server = await startLoopbackServer();
    http = testUpstreamHttp();
    settings = {
      baseUrl: `${server.url}/web`,
      authUrl: `${server.url}/auth`,
      http,
      clientVersion: '2.2.0',
      language: 'en-US',
      timeZone: 'Europe/Berlin',
      defaultRetryAfterMs: 60_000,
      busyRetryAfterMs: 3_000,
    };
  });
  beforeEach(() => {
    server.requests.length = 0;
  });
  after(async () => {
    await http.close();
    await server.close();
  });
  const signal = () => AbortSignal.timeout(3_000);

  it('builds a session from an access token without network: identity and expiry from claims', () => {
    const session = sessionFromAccessToken(accessToken(1_900_000_000));
    assert.equal(session.dialect, 'current');
    assert.equal(session.accessExpiresAt, 1_900_000_000_000);
    assert.deepEqual(session.identity, { userId: 'd5ig6pin7541vtcbh9t0', deviceId: '7470123456789012345', sessionId: '1730123456789012345' });
    assert.equal(sessionFromAccessToken('not-a-jwt').accessExpiresAt, undefined);
  });

  it('derives every header of §3.3 / §10.8 from the claims', () => {
    const session = sessionFromAccessToken(accessToken());
    assert.deepEqual(connectHeaders(settings, session.identity, session.accessToken), {
      'connect-protocol-version': '1',
      'x-msh-platform': 'web',
      'x-msh-version': '2.2.0',
      'x-language': 'en-US',
      'r-timezone': 'Europe/Berlin',
      origin: server.url,
      referer: `${server.url}/`,
      authorization: `Bearer ${session.accessToken}`,
      'x-msh-device-id': '7470123456789012345',
      'x-msh-session-id': '1730123456789012345',
      'x-traffic-id': 'd5ig6pin7541vtcbh9t0',
    });
  });

  it('never forwards a claim that is not header-safe', () => {
    const headers = connectHeaders(settings, { userId: 'bad\r\nvalue', deviceId: '1' });
    assert.equal(headers['x-traffic-id'], undefined);
    assert.equal(headers['x-msh-device-id'], '1');
    assert.equal(headers.authorization, undefined);
  });

  it('refreshes at the account service and returns the rotated refresh token (§3.4, §10.2)', async () => {
    const oldRefresh = refreshToken();
    const newAccess = accessToken(1_900_000_900);
    const newRefresh = refreshToken(2_200_000_000);
    server.handle((_request, response) => sendJson(response, 200, { accessToken: newAccess, refreshToken: newRefresh }));
    const grant = await refreshSession(settings, oldRefresh, 'auto', signal());
    assert.equal(server.requests.length, 1);
    const [request] = server.requests;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/auth/api/account.gateway.v1.AuthService/RefreshToken');
    assert.equal(request.body.toString(), JSON.stringify({ refresh_token: oldRefresh }));
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['connect-protocol-version'], '1');
    assert.equal(request.headers.authorization, undefined);
    assert.equal(request.headers['x-traffic-id'], 'd5ig6pin7541vtcbh9t0');
    assert.equal(grant.accessToken, newAccess);
    assert.equal(grant.accessExpiresAt, 1_900_000_900_000);
    assert.equal(grant.refreshToken, newRefresh);
    assert.equal(grant.refreshExpiresAt, 2_200_000_000_000);
    assert.equal(grant.identity.userId, 'd5ig6pin7541vtcbh9t0');
  });

  it('accepts a snake_case answer and keeps refresh-token identity when the access token has none', async () => {
    const bareAccess = makeJwt({ typ: 'access', exp: 1_900_000_000 });
    server.handle((_request, response) => sendJson(response, 200, { access_token: bareAccess }));
    const grant = await refreshSession(settings, refreshToken(), 'account-service', signal());
    assert.equal(grant.accessToken, bareAccess);
    assert.equal(grant.refreshToken, undefined);
    assert.equal(grant.identity.deviceId, '7470123456789012345');
  });

  it('a refused refresh token is an auth error that blames the account and never quotes the token', async () => {
    const dead = refreshToken();
    server.handle((_request, response) => sendJson(response, 401, { code: 'unauthenticated', message: 'invalid claims' }));
    await assert.rejects(refreshSession(settings, dead, 'auto', signal()), (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.code, 'invalid_token');
      assert.equal(error.blamesAccount, true);
      assert.match(error.message, /refused the refresh token.*HTTP 401.*invalid claims/);
      assert.ok(!error.message.includes(dead));
      return true;
    });
  });

  it('falls back to GET /api/auth/token/refresh when the account service route is missing (§9 D3)', async () => {
    const token = refreshToken();
    const newAccess = accessToken(1_900_000_500);
    const newRefresh = refreshToken(2_300_000_000);
    server.handle((request, response) => {
      if (request.path.startsWith('/auth/')) return sendJson(response, 404, { code: 'not_found' });
      sendJson(response, 200, { access_token: newAccess, refresh_token: newRefresh });
    });
    const grant = await refreshSession(settings, token, 'auto', signal());
    assert.deepEqual(server.requests.map((request) => `${request.method} ${request.path}`), [
      'POST /auth/api/account.gateway.v1.AuthService/RefreshToken',
      'GET /web/api/auth/token/refresh',
    ]);
    assert.equal(server.requests[1].headers.authorization, `Bearer ${token}`);
    assert.equal(server.requests[1].headers['connect-protocol-version'], undefined);
    assert.equal(grant.accessToken, newAccess);
    assert.equal(grant.refreshToken, newRefresh);
  });

  it('uses only the GET path when asked explicitly', async () => {
    server.handle((_request, response) => sendJson(response, 200, { access_token: accessToken() }));
    await refreshSession(settings, refreshToken(), 'web-get', signal());
    assert.deepEqual(server.requests.map((request) => request.path), ['/web/api/auth/token/refresh']);
  });

  it('does not fall back when the account-service path was chosen explicitly', async () => {
    server.handle((_request, response) => sendJson(response, 404, { code: 'not_found' }));
    await assert.rejects(refreshSession(settings, refreshToken(), 'account-service', signal()));
    assert.equal(server.requests.length, 1);
  });
});
