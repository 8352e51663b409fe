// QR login against the simulator (§3.4; field names are our reading, see simulator/README.md "QR login"):
// create, poll through pending/scanned to confirmed, expiry, abort, and a host without the RPC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { startFaultProxy, type FaultProxy, type UpstreamAnswer } from '../../test/support/fault-proxy.ts';
import { createUpstreamHttp, type UpstreamHttp } from '../upstream/upstream-http.ts';
import { qrLoginInstructions, startQrLogin, type QrLoginStatus } from './qr-login.ts';

let simulator: Simulator;
let http: UpstreamHttp;
before(async () => {
  simulator = await startSimulator();
  http = createUpstreamHttp({ connectTimeoutMs: 2000, firstByteTimeoutMs: 5000, idleTimeoutMs: 5000, defaultRetryAfterMs: 1000, userAgent: 'test' });
});
after(async () => {
  await http.close();
  await simulator.close();
});

async function phone(baseUrl: string, id: string, action: 'scan' | 'confirm'): Promise<void> {
  const response = await request(`${baseUrl}/__simulator/qr/${id}/${action}`, { method: 'POST' });
  await response.body.text();
  assert.equal(response.statusCode, 200);
}

test('startQrLogin → scan → confirm: poll resolves with a token pair that refreshes (§3.4)', async () => {
  const login = await startQrLogin({ authUrl: simulator.url, http, pollIntervalMs: 20 });
  assert.match(login.url, /\/qr-login\//);
  assert.ok(login.expiresAt && login.expiresAt > Date.now());
  const seen: QrLoginStatus[] = [];
  const polled = login.poll(AbortSignal.timeout(5000), (status) => {
    seen.push(status);
    if (status === 'pending') void phone(simulator.url, login.id, 'scan');
    if (status === 'scanned') void phone(simulator.url, login.id, 'confirm');
  });
  const tokens = await polled;
  assert.deepEqual(seen, ['pending', 'scanned', 'confirmed']);
  const refreshed = await request(`${simulator.url}/api/account.gateway.v1.AuthService/RefreshToken`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: tokens.refreshToken }),
  });
  assert.equal(refreshed.statusCode, 200);
  assert.ok(((await refreshed.body.json()) as { accessToken?: string }).accessToken);
  assert.notEqual(tokens.accessToken, tokens.refreshToken);
});

test('an unconfirmed code ends with qr_expired once it expires (bounded polling)', async () => {
  let now = Date.now();
  const clocked = await startSimulator({ clock: () => now });
  try {
    const login = await startQrLogin({ authUrl: clocked.url, http, pollIntervalMs: 10, clock: () => now });
    const polled = login.poll(AbortSignal.timeout(5000));
    now += 130_000;
    await assert.rejects(polled, { code: 'qr_expired', status: 410, type: 'invalid_request_error' });
  } finally {
    await clocked.close();
  }
});

test('maxWaitMs bounds the wait even when the code would live longer', async () => {
  const login = await startQrLogin({ authUrl: simulator.url, http, pollIntervalMs: 20, maxWaitMs: 60 });
  const started = performance.now();
  await assert.rejects(login.poll(AbortSignal.timeout(5000)), { code: 'qr_expired' });
  assert.ok(performance.now() - started < 1000);
});

test('aborting the poll rejects promptly', async () => {
  const login = await startQrLogin({ authUrl: simulator.url, http, pollIntervalMs: 10_000 });
  const controller = new AbortController();
  const polled = login.poll(controller.signal);
  setTimeout(() => controller.abort(new Error('user left')), 30);
  await assert.rejects(polled, /user left/);
});

test('a host without the RPC is a clear upstream error naming §3.4', async () => {
  await assert.rejects(startQrLogin({ authUrl: `${simulator.url}/elsewhere`, http }), (error: Error) => /HTTP 404 .*no QR login.*§3\.4/.test(error.message));
});

test('terminal instructions print the URL and say how long the code lives', () => {
  const text = qrLoginInstructions({ url: 'https://www.kimi.com/qr/abc', expiresAt: 1_000_000 + 120_000 }, 1_000_000);
  assert.match(text, /^ {2}https:\/\/www\.kimi\.com\/qr\/abc$/m);
  assert.match(text, /expires in about 2 minute/);
});

// Status drift between the poll and the simulator (the status names are our reading, §3.4): the fault proxy
// renames one status in GetLoginQRCodeStatus answers.
async function withStatusRename(from: string, to: string, run: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const proxy = await startFaultProxy(simulator.url);
  proxy.setRule({ path: /GetLoginQRCodeStatus$/, rewrite: (answer: UpstreamAnswer) => ({ ...answer, body: Buffer.from(answer.body.toString().replace(from, to)) }) });
  try {
    await run(proxy);
  } finally {
    await proxy.close();
  }
}

test('§3.4 a renamed confirmed status (STATUS_SUCCESS) that carries the token pair is a confirmation, not an expiry', async () => {
  await withStatusRename('STATUS_CONFIRMED', 'STATUS_SUCCESS', async (proxy) => {
    const login = await startQrLogin({ authUrl: proxy.url, http, pollIntervalMs: 20, maxWaitMs: 3000 });
    const seen: QrLoginStatus[] = [];
    const polled = login.poll(AbortSignal.timeout(5000), (status) => seen.push(status));
    await phone(simulator.url, login.id, 'confirm');
    const tokens = await polled;
    assert.match(tokens.refreshToken, /^eyJ/);
    assert.match(tokens.accessToken, /^eyJ/);
    assert.equal(seen.at(-1), 'confirmed');
  });
});

test('§3.4 a timeout after an unknown waiting status names that status (never a token)', async () => {
  await withStatusRename('STATUS_PENDING', 'STATUS_WAITING', async (proxy) => {
    const login = await startQrLogin({ authUrl: proxy.url, http, pollIntervalMs: 20, maxWaitMs: 100 });
    await assert.rejects(login.poll(AbortSignal.timeout(5000)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'qr_expired');
      assert.match(error.message, /last status was STATUS_WAITING, which this version does not know \(§3\.4\)/);
      return true;
    });
  });
});

test('a refusal on the phone is 409 qr_rejected with type conflict_error (docs/errors.md)', async () => {
  await withStatusRename('STATUS_SCANNED', 'STATUS_REJECTED', async (proxy) => {
    const login = await startQrLogin({ authUrl: proxy.url, http, pollIntervalMs: 20, maxWaitMs: 3000 });
    const polled = login.poll(AbortSignal.timeout(5000));
    await phone(simulator.url, login.id, 'scan');
    await assert.rejects(polled, { code: 'qr_rejected', status: 409, type: 'conflict_error', message: /not approved on the phone \(STATUS_REJECTED\)/ });
  });
});
