/** Self-test for browser.ts: headless Chromium starts on this machine and reads a loopback page (issue 6). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { launchBrowser } from './browser.ts';

let server: Server;
let baseUrl: string;
let browser: Browser;

before(async () => {
  server = createServer((request, response) => {
    if (request.url === '/') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end('<!doctype html><title>t</title><p id="greeting">static</p>' +
        '<script>document.getElementById("greeting").textContent += " + script ran";</script>');
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('opens a page served from loopback and reads its text after scripts ran', async () => {
  const page = await browser.newPage();
  await page.goto(`${baseUrl}/`);
  assert.equal(await page.textContent('#greeting'), 'static + script ran');
  await page.close();
});

test('every launch starts from a fresh profile: storage set in one launch is gone in the next', async () => {
  const first = await launchBrowser();
  try {
    const page = await first.newPage();
    await page.goto(`${baseUrl}/`);
    await page.evaluate(() => localStorage.setItem('marker', 'from-first-launch'));
    assert.equal(await page.evaluate(() => localStorage.getItem('marker')), 'from-first-launch');
  } finally {
    await first.close();
  }
  const second = await launchBrowser();
  try {
    const page = await second.newPage();
    await page.goto(`${baseUrl}/`);
    assert.equal(await page.evaluate(() => localStorage.getItem('marker')), null);
  } finally {
    await second.close();
  }
});
