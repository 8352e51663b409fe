// Token refresh on the simulator (§3.4, §2.2, §9 D3): rotation, one-use grace, reuse rejection, both endpoints.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from './simulator.ts';
import { getJson, postJson } from './test-helpers.ts';

const REFRESH_PATH = '/api/account.gateway.v1.AuthService/RefreshToken';
let simulator: Simulator;
let now = Date.parse('2026-11-28T00:00:00Z');

before(async () => {
  simulator = await startSimulator({ clock: () => now });
});
after(() => simulator.close());

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

test('issued tokens carry the §3.4 claims; access lives 900 s, refresh 90 days', () => {
  const account = simulator.issueAccount({ region: 'overseas' });
  const access = claimsOf(account.accessToken);
  assert.equal(access.iss, 'account');
  assert.deepEqual(access.aud, ['kimi.ai']);
  assert.equal(access.typ, 'access');
  assert.equal(access.app_id, 'kimi');
  assert.equal(access.sub, account.userId);
  assert.match(String(access.sub), /^[0-9a-v]{20}$/);
  assert.match(String(access.ssid), /^\d{19}$/);
  assert.match(String(access.device_id), /^\d{19}$/);
  assert.equal(access.region, 'overseas');
  assert.equal(Number(access.exp) - Number(access.iat), 900);
  const refresh = claimsOf(account.refreshToken);
  assert.equal(refresh.typ, 'refresh');
  assert.equal(Number(refresh.exp) - Number(refresh.iat), 90 * 86_400);
  const legacy = claimsOf(account.legacyRefreshToken);
  assert.deepEqual([legacy.iss, legacy.typ, legacy.aud], ['user-center', 'refresh', undefined]);
});

test('RefreshToken rotates both tokens; the old refresh token works once within 10 s, then "invalid claims"', async () => {
  const account = simulator.issueAccount();
  const first = await postJson(simulator.url, REFRESH_PATH, { refresh_token: account.refreshToken });
  assert.equal(first.status, 200);
  const rotated = first.json as { accessToken: string; refreshToken: string };
  assert.notEqual(rotated.refreshToken, account.refreshToken);
  assert.notEqual(rotated.accessToken, account.accessToken);

  now += 5_000;
  const grace = await postJson(simulator.url, REFRESH_PATH, { refresh_token: account.refreshToken });
  assert.equal(grace.status, 200, 'one use inside the grace window');
  assert.equal(grace.json.refreshToken, rotated.refreshToken, 'the grace use converges on the live token');
  const reused = await postJson(simulator.url, REFRESH_PATH, { refresh_token: account.refreshToken });
  assert.equal(reused.status, 401);
  assert.deepEqual([reused.json.code, reused.json.message], ['unauthenticated', 'invalid claims']);
  assert.equal(simulator.refreshCount(account.userId), 2);

  // camelCase body is accepted too (§6 item 1).
  const camel = await postJson(simulator.url, REFRESH_PATH, { refreshToken: rotated.refreshToken });
  assert.equal(camel.status, 200);
  now += 11_000;
  const late = await postJson(simulator.url, REFRESH_PATH, { refresh_token: rotated.refreshToken });
  assert.equal(late.status, 401, 'the grace window is 10 s');
});

test('unknown, forged and legacy-family tokens are refused by RefreshToken', async () => {
  const account = simulator.issueAccount();
  for (const token of ['not-a-jwt', `${account.refreshToken.slice(0, -4)}AAAA`, account.legacyRefreshToken, account.accessToken]) {
    const response = await postJson(simulator.url, REFRESH_PATH, { refresh_token: token });
    assert.equal(response.status, 401);
    assert.equal(response.json.code, 'unauthenticated');
  }
  assert.equal((await postJson(simulator.url, REFRESH_PATH, {})).status, 400);
});

test('GET /api/auth/token/refresh rotates legacy and account refresh tokens (§2.2, §9 D3)', async () => {
  const account = simulator.issueAccount();
  const legacy = await getJson(simulator.url, '/api/auth/token/refresh', account.legacyRefreshToken);
  assert.equal(legacy.status, 200);
  const access = claimsOf(String(legacy.json.access_token));
  assert.deepEqual([access.iss, access.typ, Number(access.exp) - Number(access.iat)], ['user-center', 'access', 900]);
  assert.notEqual(legacy.json.refresh_token, account.legacyRefreshToken);
  const user = await getJson(simulator.url, '/api/user', String(legacy.json.access_token));
  assert.deepEqual([user.status, user.json.id, user.json.status], [200, account.userId, 'normal']);

  const current = await getJson(simulator.url, '/api/auth/token/refresh', account.refreshToken);
  assert.equal(current.status, 200);
  assert.equal(claimsOf(String(current.json.access_token)).iss, 'account');

  const refused = await getJson(simulator.url, '/api/auth/token/refresh', 'garbage');
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error_type, 'auth.token.invalid');
});

test('scenarios refresh-fails (times 1) and slow-refresh apply per account', async () => {
  const account = simulator.issueAccount();
  const other = simulator.issueAccount();
  simulator.setScenario('refresh-fails', { userId: account.userId, times: 1 });
  assert.equal((await postJson(simulator.url, REFRESH_PATH, { refresh_token: other.refreshToken })).status, 200, 'other accounts unaffected');
  assert.equal((await postJson(simulator.url, REFRESH_PATH, { refresh_token: account.refreshToken })).status, 401);
  const healed = await postJson(simulator.url, REFRESH_PATH, { refresh_token: account.refreshToken });
  assert.equal(healed.status, 200, 'reverts to normal after `times`');

  simulator.setScenario('slow-refresh', { times: 1 });
  const started = performance.now();
  assert.equal((await postJson(simulator.url, REFRESH_PATH, { refresh_token: healed.json.refreshToken })).status, 200);
  assert.ok(performance.now() - started >= 290);
});
