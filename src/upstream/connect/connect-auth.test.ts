import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../../simulator/simulator.ts';
import { startFaultProxy, type FaultProxy } from '../../../test/support/fault-proxy.ts';
import { AuthenticationError, UpstreamError } from '../../errors.ts';
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

// Drift in the refresh answer, against the simulator behind the fault proxy (§3.4 rotation, §10.2 persist).
describe('connect auth: a drifted refresh answer (§3.4, §10.2)', () => {
  let simulator: Simulator;
  let proxy: FaultProxy;
  let http: UpstreamHttp;
  let settings: ConnectSettings;
  const reported: string[] = [];
  before(async () => {
    // No grace window: a refresh token rotated away is refused at once, as Kimi eventually does.
    simulator = await startSimulator({ refreshGraceSeconds: 0 });
    proxy = await startFaultProxy(simulator.url);
    http = testUpstreamHttp();
    settings = {
      baseUrl: proxy.url,
      authUrl: proxy.url,
      http,
      clientVersion: '2.2.0',
      language: 'en-US',
      timeZone: 'UTC',
      defaultRetryAfterMs: 60_000,
      busyRetryAfterMs: 3_000,
      onUnknown: (kind, name) => reported.push(`${kind}:${name}`),
    };
  });
  beforeEach(() => {
    reported.length = 0;
    proxy.setRule(undefined);
  });
  after(async () => {
    await http.close();
    await proxy.close();
    await simulator.close();
  });
  const signal = () => AbortSignal.timeout(3_000);
  const renameRotated = { path: /RefreshToken$/, rewrite: (answer: { status: number; headers: Record<string, string>; body: Buffer }) => ({ ...answer, body: Buffer.from(answer.body.toString().replace('"refreshToken"', '"newRefreshToken"')) }) };
  const htmlPage = { path: /RefreshToken$/, rewrite: () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: Buffer.from('<!doctype html><html><head><title>Kimi</title></head><body>app</body></html>') }) };

  it('§3.4 renamed rotated token: keeps the refresh JWT from the unknown field, reports field:refresh.<name>, and the account survives the next refresh', async () => {
    const account = simulator.issueAccount();
    proxy.setRule(renameRotated);
    const first = await refreshSession(settings, account.refreshToken, 'auto', signal());
    assert.ok(first.refreshToken, 'the rotated refresh token is kept');
    assert.notEqual(first.refreshToken, account.refreshToken);
    assert.ok(first.refreshExpiresAt && first.refreshExpiresAt > Date.now());
    assert.deepEqual(reported, ['field:refresh.newRefreshToken']);
    // The old token was rotated away (no grace): only the kept one refreshes again.
    const second = await refreshSession(settings, first.refreshToken, 'auto', signal());
    assert.ok(second.accessToken);
    await assert.rejects(refreshSession(settings, account.refreshToken, 'auto', signal()), AuthenticationError);
  });

  it('§3.4 renamed rotated token without an observer: a process warning names the field, never the token', async () => {
    const account = simulator.issueAccount();
    proxy.setRule(renameRotated);
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const { onUnknown: _observer, ...withoutObserver } = settings;
      const grant = await refreshSession(withoutObserver, account.refreshToken, 'auto', signal());
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.ok(grant.refreshToken);
      const drift = warnings.filter((warning) => /unknown field/.test(warning.message));
      assert.equal(drift.length, 1);
      assert.match(drift[0].message, /field:refresh\.newRefreshToken/);
      assert.ok(!drift[0].message.includes(grant.refreshToken!) && !/eyJ/.test(drift[0].message));
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('§3.4 an HTML page with status 200 is named as such, not as "without an access token"', async () => {
    const account = simulator.issueAccount();
    proxy.setRule(htmlPage);
    await assert.rejects(refreshSession(settings, account.refreshToken, 'auto', signal()), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.match(error.message, /answered the account-service refresh with an HTML page \("Kimi app"\) instead of JSON/);
      assert.doesNotMatch(error.message, /without an access token/);
      return true;
    });
  });
});
