/**
 * `add-account --qr` (issue 10, spec §3.4 QR login): the QR code is drawn in the terminal, the phone
 * confirms, and the account lands in the state store checked live.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startSimulator, type Simulator } from '../../simulator/simulator.ts';

let simulator: Simulator;
let folder: string;
before(async () => {
  simulator = await startSimulator();
  folder = mkdtempSync(join(tmpdir(), 'kfa-cli-qr-'));
});
after(async () => {
  await simulator.close();
  rmSync(folder, { recursive: true, force: true });
});

test('add-account --qr shows a QR code in the terminal and stores the confirmed account', async () => {
  const stateFile = join(folder, 'state.json');
  const child = spawn(process.execPath, ['src/cli.ts', 'add-account', '--qr'], {
    cwd: join(import.meta.dirname, '../..'),
    env: { PATH: process.env.PATH, KIMI_BASE_URL: simulator.url, KIMI_AUTH_URL: simulator.url, KIMI_LEGACY_BASE_URL: simulator.url, STATE_FILE: stateFile, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 10_000;
  while (!/\/qr-login\/([\w-]+)/.test(stdout) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const upstreamId = /\/qr-login\/([\w-]+)/.exec(stdout)?.[1];
  assert.ok(upstreamId, `no login link printed: ${stdout}${stderr}`);
  assert.match(stdout, /[█▀▄]{10,}/, 'the QR code is drawn with block characters');
  const confirmed = await fetch(`${simulator.url}/__simulator/qr/${upstreamId}/confirm`, { method: 'POST' });
  assert.equal(confirmed.status, 200);
  const killer = setTimeout(() => child.kill(), 20_000);
  const code = await exited;
  clearTimeout(killer);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /Added account \S+ \(current dialect, by QR login\)/);
  assert.doesNotMatch(stdout + stderr, /eyJ/, 'no token printed');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { entries: Record<string, unknown> };
  assert.ok(Object.keys(state.entries).some((key) => key.startsWith('account:')), 'the account is in the state store');
});
