// POST /v1/accounts/qr and GET /v1/accounts/qr/{id} or ?id= (issue 10): gateway key, the confirm flow against the
// simulator's QR login (§3.4, inferred fields), tokens never reach the browser, failures and the pending cap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../../simulator/simulator.ts';
import { startFaultProxy, type FaultProxy } from '../../../test/support/fault-proxy.ts';
import { startQrLogin } from '../../accounts/qr-login.ts';
import type { AccountView } from '../../chat/chat-ports.ts';
import { createLogger } from '../../log.ts';
import { createUpstreamHttp, type UpstreamHttp } from '../../upstream/upstream-http.ts';
import { createApp } from '../app.ts';
import { createCredentialResolver } from '../credentials.ts';
import { qrLoginRoutes, type QrRoutes } from './qr-routes.ts';

let simulator: Simulator;
let proxy: FaultProxy;
let http: UpstreamHttp;
let server: Server;
let routes: QrRoutes;
let baseUrl: string;
let maxWaitMs = 60_000;
const added: string[] = [];

before(async () => {
  simulator = await startSimulator();
  proxy = await startFaultProxy(simulator.url); // passes everything through unless a test sets a rule
  http = createUpstreamHttp({ connectTimeoutMs: 2000, firstByteTimeoutMs: 5000, idleTimeoutMs: 5000, defaultRetryAfterMs: 1000, userAgent: 'test' });
  const credentials = createCredentialResolver({ apiKeys: ['gateway-key'], hasServerPool: true });
  routes = qrLoginRoutes({
    startQrLogin: (signal) => startQrLogin({ authUrl: proxy.url, http, pollIntervalMs: 20, maxWaitMs }, signal),
    addAccountFromToken: async (token): Promise<AccountView> => {
      added.push(token);
      return { id: `acct-${added.length}`, dialect: 'current', state: 'live', source: 'added', inFlight: 0, isShortLived: false };
    },
    requireGatewayKey: credentials.requireGatewayKey,
    maxPending: 2,
  });
  const app = createApp({
    routes: [
      { method: 'POST', path: '/v1/accounts/qr', handler: routes.create },
      { method: 'GET', path: '/v1/accounts/qr', handler: routes.status },
      // The same line src/main.ts needs for the path form the module header promises.
      { method: 'GET', path: '/v1/accounts/qr/*', handler: routes.status },
    ],
    log: createLogger({ level: 'silent', destination: new PassThrough() }),
    corsOrigins: [],
  });
  server = createServer(app.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  routes.close();
  await new Promise((resolve) => server.close(resolve));
  await http.close();
  await proxy.close();
  await simulator.close();
});

async function call(method: 'GET' | 'POST', path: string, key = 'gateway-key'): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const response = await request(`${baseUrl}${path}`, { method, headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await response.body.text();
  return { status: response.statusCode, json: JSON.parse(text) as Record<string, unknown>, text };
}

async function until(id: string, wanted: string[]): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const answer = await call('GET', `/v1/accounts/qr?id=${id}`);
    if (wanted.includes(String(answer.json.status)) || Date.now() > deadline) return answer.json;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('the gateway key is required on both routes', async () => {
  assert.equal((await call('POST', '/v1/accounts/qr', '')).status, 401);
  assert.equal((await call('GET', '/v1/accounts/qr?id=x', 'wrong')).status, 401);
});

test('create → scan → confirm: the page sees pending, scanned, then confirmed with the account; no token reaches it', async () => {
  const created = await call('POST', '/v1/accounts/qr');
  assert.equal(created.status, 201);
  assert.equal(created.json.status, 'pending');
  const upstreamId = String(created.json.url).split('/qr-login/')[1];
  const id = String(created.json.id);
  assert.notEqual(id, upstreamId, 'the page gets a local id');
  await request(`${simulator.url}/__simulator/qr/${upstreamId}/scan`, { method: 'POST' }).then((response) => response.body.text());
  assert.equal((await until(id, ['scanned'])).status, 'scanned');
  await request(`${simulator.url}/__simulator/qr/${upstreamId}/confirm`, { method: 'POST' }).then((response) => response.body.text());
  const confirmed = await until(id, ['confirmed', 'failed']);
  assert.equal(confirmed.status, 'confirmed');
  assert.equal((confirmed.account as AccountView).id, `acct-${added.length}`);
  assert.match(added.at(-1)!, /^eyJ/, 'the refresh token went to the pool');
  const raw = await call('GET', `/v1/accounts/qr?id=${id}`);
  assert.ok(!raw.text.includes('eyJ'), 'no token in the status answer');
});

test('an expired code ends as failed with qr_expired; unknown ids are 404', async () => {
  maxWaitMs = 50;
  try {
    const created = await call('POST', '/v1/accounts/qr');
    const failed = await until(String(created.json.id), ['failed']);
    assert.deepEqual({ ...(failed.error as object), message: undefined }, { code: 'qr_expired', type: 'invalid_request_error', message: undefined });
  } finally {
    maxWaitMs = 60_000;
  }
  const unknown = await call('GET', '/v1/accounts/qr?id=nope');
  assert.equal(unknown.status, 404);
});

test('the path form GET /v1/accounts/qr/{id} answers like ?id=; an unknown id says the process does not know it', async () => {
  const created = await call('POST', '/v1/accounts/qr');
  const id = String(created.json.id);
  const byPath = await call('GET', `/v1/accounts/qr/${id}`);
  assert.equal(byPath.status, 200);
  assert.equal(byPath.json.id, id);
  assert.equal(byPath.json.status, 'pending');
  const unknown = await call('GET', '/v1/accounts/qr/0f0e5a39-restarted');
  assert.equal(unknown.status, 404);
  assert.match((unknown.json.error as { message: string }).message, /unknown to this gateway process \(finished more than ten minutes ago, expired, or the gateway restarted\)/);
  const malformed = await call('GET', '/v1/accounts/qr/%E0%A4%A');
  assert.equal(malformed.status, 404, 'a malformed escape is no id, not a server error');
  routes.close(); // stop this login's polling, so it no longer counts against maxPending
  assert.equal((await until(id, ['failed'])).status, 'failed');
});

test('a refused login: the poll answers 200 with status failed and error {code qr_rejected, type conflict_error} (docs/errors.md)', async () => {
  proxy.setRule({ path: /GetLoginQRCodeStatus$/, rewrite: (answer) => ({ ...answer, body: Buffer.from(answer.body.toString().replace('STATUS_SCANNED', 'STATUS_REJECTED')) }) });
  try {
    const created = await call('POST', '/v1/accounts/qr');
    const upstreamId = String(created.json.url).split('/qr-login/')[1];
    await request(`${simulator.url}/__simulator/qr/${upstreamId}/scan`, { method: 'POST' }).then((response) => response.body.text());
    await until(String(created.json.id), ['failed']);
    const failed = await call('GET', `/v1/accounts/qr/${String(created.json.id)}`);
    assert.equal(failed.status, 200);
    assert.equal(failed.json.status, 'failed');
    assert.deepEqual({ ...(failed.json.error as object), message: undefined }, { code: 'qr_rejected', type: 'conflict_error', message: undefined });
  } finally {
    proxy.setRule(undefined);
  }
});

test('a renamed confirmed status that carries the tokens still adds the account (§3.4)', async () => {
  proxy.setRule({ path: /GetLoginQRCodeStatus$/, rewrite: (answer) => ({ ...answer, body: Buffer.from(answer.body.toString().replace('STATUS_CONFIRMED', 'STATUS_SUCCESS')) }) });
  try {
    const created = await call('POST', '/v1/accounts/qr');
    const upstreamId = String(created.json.url).split('/qr-login/')[1];
    await request(`${simulator.url}/__simulator/qr/${upstreamId}/confirm`, { method: 'POST' }).then((response) => response.body.text());
    const done = await until(String(created.json.id), ['confirmed', 'failed']);
    assert.equal(done.status, 'confirmed', JSON.stringify(done.error));
    assert.equal((done.account as AccountView).id, `acct-${added.length}`);
  } finally {
    proxy.setRule(undefined);
  }
});

test('at most maxPending logins wait at once (429 with Retry-After)', async () => {
  const first = await call('POST', '/v1/accounts/qr');
  const second = await call('POST', '/v1/accounts/qr');
  const third = await request(`${baseUrl}/v1/accounts/qr`, { method: 'POST', headers: { authorization: 'Bearer gateway-key' } });
  await third.body.text();
  assert.deepEqual([first.status, second.status, third.statusCode], [201, 201, 429]);
  assert.ok(third.headers['retry-after']);
});
