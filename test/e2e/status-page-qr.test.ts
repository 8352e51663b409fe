/**
 * The status page in headless Chromium against the real gateway and the simulator (issues 6 and 10): the
 * page asks for the gateway key, shows the pool, streams a playground answer, imports a pasted cURL
 * command, and completes "Log in with QR" through to a new live account in the pool.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { simulatedReply } from '../../simulator/reply-text.ts';
import { launchBrowser } from '../support/browser.ts';
import { startStack, type Stack } from '../support/stack.ts';

const GATEWAY_KEY = 'e2e-gateway-key';

let stack: Stack;
let browser: Browser;

before(async () => {
  stack = await startStack({ serverPool: true, env: { API_KEYS: GATEWAY_KEY } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.close();
});

async function openWithKey(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: Error[] = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.goto(`${stack.gatewayUrl}/`);
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

test('the page shows the pool (hashes only) and the playground streams an answer', async () => {
  const page = await openWithKey();
  assert.ok((await accountRows(page)) >= 1);
  const table = (await page.textContent('#accounts-body')) ?? '';
  assert.ok(table.includes(stack.gateway.pool.serverAccounts()[0].id), 'the account hash is listed');
  assert.ok(!table.includes(stack.tokens[0]) && !(await page.content()).includes('eyJ'), 'no token on the page');
  await page.fill('#prompt-input', 'Hello from the page');
  await page.click('#send-button');
  const expected = simulatedReply({ userText: 'Hello from the page', turn: 1 }).plainText;
  await page.waitForFunction((text) => (document.getElementById('answer-output')?.textContent ?? '').includes(text), expected, { timeout: 10_000 });
  await page.context().close();
});

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
  assert.equal(await page.isVisible('#qr-image'), true, 'the QR code is drawn');
  assert.match((await page.getAttribute('#qr-image', 'src')) ?? '', /^data:image\/svg\+xml;base64,/);
  assert.ok(await page.$eval('#qr-image', (image) => (image as HTMLImageElement).naturalWidth > 0), 'the image decodes');
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
