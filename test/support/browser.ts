/**
 * @module test/support/browser
 * Launches Debian's headless Chromium through playwright-core for browser tests (issue 6). No
 * browser is downloaded: the executable is the system one at /usr/bin/chromium.
 *
 * Each launch gets a fresh, temporary user-data-dir: Playwright creates one per `launch()` and
 * deletes it on `close()` (it refuses a `--user-data-dir` switch in `args`), so no storage, cookie
 * or cache leaks from one test run into the next. browser.test.ts checks that.
 */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_EXECUTABLE = '/usr/bin/chromium';

/** Switches that keep Chromium quiet and offline apart from the pages a test opens (loopback only). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox', // we run as root in CI, where the sandbox cannot start
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface LaunchOptions {
  /** Milliseconds to wait for the browser to start. Default 15000. */
  timeoutMs?: number;
}

/** Starts headless Chromium; the caller closes it in an after-hook. */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_EXECUTABLE,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: options.timeoutMs ?? 15_000,
  });
}
