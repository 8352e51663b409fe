/**
 * The status page's account forms in headless Chromium against the real gateway and the simulator (issue 10):
 * pasting a copied cURL command, and "Log in with QR" through to a new live account in the pool.
 *
 * The gateway does not register the QR routes yet (src/http/routes/qr-routes.ts is waiting to be wired in
 * main.ts), so a same-origin shim in front of it serves POST/GET /v1/accounts/qr with the real route code and
 * hands the confirmed token to the gateway's own POST /v1/accounts; everything else is proxied untouched.
 * Once the gateway serves those routes, point the browser at `stack.gatewayUrl` and drop the shim.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { startQrLogin } from '../../src/accounts/qr-login.ts';
import type { AccountView } from '../../src/chat/chat-ports.ts';
import { createApp } from '../../src/http/app.ts';
import { createCredentialResolver } from '../../src/http/credentials.ts';
import { qrLoginRoutes, type QrRoutes } from '../../src/http/routes/qr-routes.ts';
import { createLogger } from '../../src/log.ts';
import { createUpstreamHttp, type UpstreamHttp } from '../../src/upstream/upstream-http.ts';
import { launchBrowser } from '../support/browser.ts';
import { startStack, type Stack } from '../support/stack.ts';

const GATEWAY_KEY = 'e2e-gateway-key';

let stack: Stack;
let browser: Browser;
let shim: Server;
let shimUrl: string;
let qr: QrRoutes;
let http: UpstreamHttp;

before(async () => {
  stack = await startStack({ serverPool: true, env: { API_KEYS: GATEWAY_KEY } });
  http = createUpstreamHttp({ connectTimeoutMs: 2000, firstByteTimeoutMs: 5000, idleTimeoutMs: 5000, defaultRetryAfterMs: 1000, userAgent: 'e2e' });
  qr = qrLoginRoutes({
    startQrLogin: (signal) => startQrLogin({ authUrl: stack.simulator.url, http, pollIntervalMs: 50 }, signal),
    addAccountFromToken: (token, signal) => addThroughGateway(token, signal),
    requireGatewayKey: createCredentialResolver({ apiKeys: [GATEWAY_KEY], hasServerPool: true }).requireGatewayKey,
  });
  const qrApp = createApp({
    routes: [
      { method: 'POST', path: '/v1/accounts/qr', handler: qr.create },
      { method: 'GET', path: '/v1/accounts/qr', handler: qr.status },
    ],
    log: createLogger({ level: 'silent', destination: new PassThrough() }),
    corsOrigins: [],
  });
  shim = createServer((req, res) => (new URL(req.url ?? '/', 'http://shim').pathname.startsWith('/v1/accounts/qr') ? qrApp.handle(req, res) : proxy(req, res)));
  await new Promise<void>((resolve) => shim.listen(0, '127.0.0.1', resolve));
  shimUrl = `http://127.0.0.1:${(shim.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  qr?.close();
  await browser?.close();
  if (shim) await new Promise((resolve) => shim.close(resolve));
  await http?.close();
  await stack?.close();
});

/** What main.ts would bind: the gateway's own add-account path (live check, then the pool). */
async function addThroughGateway(token: string, signal: AbortSignal): Promise<AccountView> {
  const response = await request(`${stack.gatewayUrl}/v1/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ input: token }),
    signal,
  });
  const body = (await response.body.json()) as { account: AccountView };
  if (response.statusCode !== 201) throw new Error(`the gateway refused the account: HTTP ${response.statusCode}`);
  return body.account;
}

function proxy(req: IncomingMessage, res: ServerResponse): void {
  const target = new URL(stack.gatewayUrl);
  const forward = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', () => res.destroy());
  req.pipe(forward);
}

async function openWithKey(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: Error[] = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.goto(`${shimUrl}/`);
  await page.waitForSelector('#key-section:not([hidden])');
  await page.fill('#key-input', GATEWAY_KEY);
  await page.click('#key-section button[type=submit]');
  await page.waitForFunction(() => /account/.test(document.getElementById('summary')?.textContent ?? '') && document.getElementById('key-section')?.hidden === true);
  assert.deepEqual(errors, []);
  return page;
}

async function accountRows(page: Page): Promise<number> {
  return page.$$eval('#accounts-body tr', (rows) => rows.length);
}

test('the add-account form imports a real-looking copied cURL command into the pool', async () => {
  const page = await openWithKey();
  const before = await accountRows(page);
  const account = stack.simulator.issueAccount();
  const curl = `curl 'https://www.kimi.com/apiv2/kimi.gateway.chat.v1.ChatService/Chat' \\\n  -H 'accept: */*' \\\n  -H 'authorization: Bearer ${account.accessToken}' \\\n  -H 'content-type: application/connect+json' \\\n  -H 'cookie: kimi-auth=${account.accessToken}; theme=dark' \\\n  --data-raw '{"refresh_token":"${account.refreshToken}"}'`;
  await page.fill('#account-input', curl);
  await page.click('#account-form button[type=submit]');
  await page.waitForFunction(() => /^(Added|Not added)/.test(document.getElementById('account-result')?.textContent ?? ''), undefined, { timeout: 10_000 });
  assert.match(await page.textContent('#account-result') ?? '', /^Added account \S+ \(current, live\)/);
  assert.equal(await page.inputValue('#account-input'), '', 'the secret is cleared from the form');
  await page.waitForFunction((count) => document.querySelectorAll('#accounts-body tr').length === count, before + 1);
  await page.context().close();
});

test('Log in with QR: the page shows the link, the phone confirms, and the new account appears live', async () => {
  const page = await openWithKey();
  const before = await accountRows(page);
  await page.click('#qr-button');
  await page.waitForSelector('#qr-panel:not([hidden])');
  const href = (await page.getAttribute('#qr-link', 'href')) ?? '';
  assert.match(href, /^http:\/\/127\.0\.0\.1:\d+\/qr-login\//);
  assert.match(await page.textContent('#qr-status') ?? '', /Waiting for the phone/);
  const upstreamId = href.split('/qr-login/')[1];
  const confirmed = await request(`${stack.simulator.url}/__simulator/qr/${upstreamId}/confirm`, { method: 'POST' });
  const { userId } = (await confirmed.body.json()) as { userId: string };
  await page.waitForFunction(() => /^(Added|QR login did not)/.test(document.getElementById('qr-status')?.textContent ?? ''), undefined, { timeout: 15_000 });
  assert.match(await page.textContent('#qr-status') ?? '', /^Added account \S+ \(current, live\) by QR login\.$/);
  assert.equal(await page.isVisible('#qr-panel'), false);
  await page.waitForFunction((count) => document.querySelectorAll('#accounts-body tr').length === count, before + 1);
  // The pool really uses it: the simulator saw the new account authenticate.
  assert.ok(stack.simulator.requests.some((seen) => seen.userId === userId));
  assert.ok(!(await page.content()).includes('eyJ'), 'no token reached the page');
  await page.context().close();
});
