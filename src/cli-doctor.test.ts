// The doctor command (contract.md): table in `step | ok or FAIL | ms | detail`, exit 0 / 1 / 2, --record DIR,
// and the rotated refresh token saved to STATE_FILE so the gateway keeps the account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { runDoctorCommand } from './cli-doctor.ts';
import { loadConfig } from './config.ts';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function withSetup(run: (simulator: Simulator, folder: string) => Promise<void>): Promise<void> {
  const simulator = await startSimulator();
  const folder = await mkdtemp(join(tmpdir(), 'kfa-cli-doctor-'));
  try {
    await run(simulator, folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
    await simulator.close();
  }
}

function config(simulator: Simulator, folder: string, tokens: string[]) {
  return loadConfig({
    env: {
      KIMI_BASE_URL: simulator.url,
      KIMI_AUTH_URL: simulator.url,
      KIMI_LEGACY_BASE_URL: simulator.url,
      KIMI_TOKENS: tokens.join(','),
      STATE_FILE: join(folder, 'state.json'),
    },
  });
}

test('healthy: prints the contract table and exits 0; the rotated token lands in STATE_FILE (§10.2)', () =>
  withSetup(async (simulator, folder) => {
    const account = simulator.issueAccount();
    const stdout = capture();
    const code = await runDoctorCommand(config(simulator, folder, [account.refreshToken]), { stdout: stdout.stream });
    assert.equal(code, 0);
    const lines = stdout.text().split('\n');
    assert.match(lines[0], /^step +\| result \| ms +\| detail$/);
    for (const step of ['dns', 'connect', 'clock', 'refresh', 'current-user', 'models', 'chat', 'delete-chat']) {
      assert.ok(lines.some((line) => new RegExp(`^${step} \\S+ +\\| ok +\\| \\d+ +\\| `).test(line)), `row for ${step}`);
    }
    assert.match(stdout.text(), /refresh token rotated and saved/);
    assert.ok(!stdout.text().includes('eyJ'));
    const state = await readFile(join(folder, 'state.json'), 'utf8');
    assert.ok(!state.includes(account.refreshToken), 'the stored token is the rotated one');
    assert.match(state, /"account:/);
  }));

test('a drifted upstream exits 1 and --record DIR writes redacted fixtures', () =>
  withSetup(async (simulator, folder) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-moved-endpoint', { userId: account.userId });
    const stdout = capture();
    const record = join(folder, 'fixtures');
    const code = await runDoctorCommand(config(simulator, folder, [account.refreshToken]), { stdout: stdout.stream, recordDirectory: record });
    assert.equal(code, 1);
    assert.match(stdout.text(), /^chat \S+ +\| FAIL +\| \d+ +\| §3\.5: expected .*HTTP 404/m);
    assert.match(stdout.text(), /1 of 8 steps FAILED/);
    const files = await readdir(record);
    assert.equal(files.length, 5, "clock, refresh, current user, models, chat (delete-chat is skipped)");
    const all = (await Promise.all(files.map((file) => readFile(join(record, file), 'utf8')))).join('');
    assert.ok(!all.includes('eyJ') && !all.includes(account.refreshToken));
  }));

test('no configured account: a clear message and exit 2', () =>
  withSetup(async (simulator, folder) => {
    const stderr = capture();
    const code = await runDoctorCommand(config(simulator, folder, []), { stderr: stderr.stream });
    assert.equal(code, 2);
    assert.match(stderr.text(), /KIMI_TOKENS/);
  }));
