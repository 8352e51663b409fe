// End to end (issues 5, 6, 10): the real command line as a user runs it (`node src/cli.ts`, the package's bin) —
// --help and --version, `check` against the simulator (one row per account, hashes only, exit 1 when one is not
// live), `add-account` with a copied cURL on stdin (stored in STATE_FILE, picked up by a running gateway within
// 5 s), invalid settings failing with exit 2 naming the key, and `--config FILE` with the environment winning.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { simulatedReply, startSimulator, type SimulatedAccount, type Simulator } from '../../simulator/simulator.ts';
import { accountIdFor } from '../../src/accounts/account.ts';
import { chat, waitUntil } from '../support/gateway-client.ts';
import { startGatewayInstance } from '../support/gateway-instance.ts';
import { startRedisServer } from '../support/redis-server.ts';
import { runCli, type CliRun } from '../support/run-cli.ts';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
let simulator: Simulator;
let folder: string;
let fileCount = 0;

before(async () => {
  simulator = await startSimulator({ chunkDelayMs: 1 });
  folder = mkdtempSync(join(tmpdir(), 'kfa-cli-'));
});
after(async () => {
  await simulator?.close();
  rmSync(folder, { recursive: true, force: true });
});

function freshStateFile(): string {
  return join(folder, `state-${(fileCount += 1)}.json`);
}

function upstreamEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { KIMI_BASE_URL: simulator.url, KIMI_AUTH_URL: simulator.url, KIMI_LEGACY_BASE_URL: simulator.url, STATE_FILE: freshStateFile(), ...extra };
}

/** No token of these accounts, and nothing JWT-shaped, in anything the command printed. */
function assertPrintsNoToken(run: CliRun, accounts: SimulatedAccount[], extra: string[] = []): void {
  const printed = run.stdout + run.stderr;
  for (const account of accounts) {
    for (const token of [account.refreshToken, account.accessToken, account.legacyRefreshToken]) assert.ok(!printed.includes(token), 'a token was printed');
  }
  for (const token of extra) assert.ok(!printed.includes(token), 'a token was printed');
  assert.doesNotMatch(printed, /eyJ/, 'nothing JWT-shaped was printed');
}

test('--help lists every command; --version prints the package version', async () => {
  const [help, version, short] = await Promise.all([runCli(['--help']), runCli(['--version']), runCli(['-v'])]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^kimi-free-api \d+\.\d+\.\d+/);
  for (const command of ['serve', 'check', 'doctor', 'add-account', 'demo', 'simulator', '--config', '--version']) {
    assert.ok(help.stdout.includes(command), `help mentions ${command}`);
  }
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `${packageVersion}\n`);
  assert.equal(short.stdout, `${packageVersion}\n`);
});

test('check: one row per KIMI_TOKENS account (hash, dialect, state), exit 0 when all live, 1 when one is refused; no token printed', async () => {
  const live = simulator.issueAccount();
  const legacy = simulator.issueAccount();
  const healthy = await runCli(['check'], { env: upstreamEnv({ KIMI_TOKENS: `${live.refreshToken},${legacy.legacyRefreshToken}` }) });
  assert.equal(healthy.code, 0, healthy.stderr);
  const lines = healthy.stdout.trim().split('\n');
  assert.match(lines[0], /^account\s*\|\s*dialect\s*\|\s*kind\s*\|\s*state\s*\|\s*access expires\s*\|\s*detail/);
  assert.equal(lines.length, 3, 'a header and one row per account');
  const rowOf = (token: string) => lines.find((line) => line.startsWith(accountIdFor(token)));
  assert.match(rowOf(live.refreshToken) ?? '', /\|\s*current\s*\|\s*refresh\s*\|\s*live\s*\|\s*\d{4}-\d\d-\d\dT/);
  assert.match(rowOf(legacy.legacyRefreshToken) ?? '', /\|\s*live\s*\|/);
  assertPrintsNoToken(healthy, [live, legacy]);
  assert.equal(simulator.refreshCount(live.userId), 1, 'check refreshed the account once');

  const refused = simulator.issueAccount();
  simulator.setScenario('refresh-fails', { userId: refused.userId });
  const mixed = await runCli(['check'], { env: upstreamEnv({ KIMI_TOKENS: `${live.refreshToken}\n${refused.refreshToken}` }) });
  simulator.reset();
  assert.equal(mixed.code, 1, 'a refused account makes check fail');
  assert.match(mixed.stdout.split('\n').find((line) => line.startsWith(accountIdFor(refused.refreshToken))) ?? '', /\|\s*invalid\s*\|/);
  assertPrintsNoToken(mixed, [live, refused]);

  const none = await runCli(['check'], { env: upstreamEnv() });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /KIMI_TOKENS/, 'says how to configure accounts');
});

test('add-account: a copied cURL on stdin is checked live and stored; a running gateway on the same STATE_FILE uses it within 5 s', async () => {
  const account = simulator.issueAccount();
  const stateFile = freshStateFile();
  const gateway = await startGatewayInstance(simulator, { STATE_FILE: stateFile });
  try {
    const curl =
      `curl 'https://www.kimi.com/apiv2/kimi.gateway.chat.v1.ChatService/Chat' \\\n  -H 'accept: */*' \\\n` +
      `  -H 'authorization: Bearer ${account.accessToken}' \\\n  -H 'content-type: application/connect+json' \\\n` +
      `  -H 'cookie: kimi-auth=${account.accessToken}; theme=dark' \\\n  --data-raw '{"refresh_token":"${account.refreshToken}"}' \\\n  --compressed`;
    const added = await runCli(['add-account'], { env: upstreamEnv({ STATE_FILE: stateFile }), stdin: curl });
    assert.equal(added.code, 0, added.stderr);
    const id = accountIdFor(account.refreshToken);
    assert.match(added.stdout, new RegExp(`^Added account ${id} \\(current dialect, from curl\\)`), 'the refresh token, not the access token, was picked');
    assertPrintsNoToken(added, [account]);
    assert.ok(readFileSync(stateFile, 'utf8').includes(id), 'written to the state file');

    const startedAt = Date.now();
    const listed = await waitUntil(async () => {
      const response = await request(`${gateway.url}/v1/accounts`);
      const body = (await response.body.json()) as { data: Array<{ id: string }> };
      return body.data.some((item) => item.id === id);
    }, 10_000, 100);
    assert.ok(listed, 'the running gateway picked the account up');
    // Contract: within 5 s (the pool re-reads the store every 4 s); headroom for a loaded CI machine.
    assert.ok(Date.now() - startedAt <= 8_000, `picked up within 5 s (+ slack), took ${Date.now() - startedAt} ms`);
    const answer = await chat(gateway.url, { prompt: 'from the added account' });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.text, simulatedReply({ userText: 'from the added account', turn: 1 }).text);
  } finally {
    await gateway.close();
  }
});

test('add-account refuses what Kimi refuses and what holds no token, printing no token and storing no token', async () => {
  const account = simulator.issueAccount();
  const forged = `${account.refreshToken.slice(0, -6)}AAAAAA`;
  const stateFile = freshStateFile();
  const refused = await runCli(['add-account', forged], { env: upstreamEnv({ STATE_FILE: stateFile }) });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /nothing was stored/);
  assertPrintsNoToken(refused, [account], [forged]);

  const empty = await runCli(['add-account'], { env: upstreamEnv(), stdin: '' });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /token, cookie, localStorage JSON or cURL/);
  // "nothing was stored" must be true: a refused token has no business on disk.
  assert.ok(!readFileSync(stateFile, 'utf8').includes(forged), 'the refused token was written to STATE_FILE');
});

test('add-account after a one-off refusal: the retry asks Kimi again and the account is added', async () => {
  const account = simulator.issueAccount();
  const env = upstreamEnv();
  simulator.setScenario('refresh-fails', { userId: account.userId, times: 1 });
  const first = await runCli(['add-account', account.refreshToken], { env });
  assert.equal(first.code, 1, 'Kimi refused the first check');
  const retry = await runCli(['add-account', account.refreshToken], { env });
  assert.equal(simulator.refreshCount(account.userId), 1, 'the retry asked Kimi again');
  assert.equal(retry.code, 0, `the retry was refused without asking Kimi: ${retry.stderr.trim().split('\n').at(-1)}`);
});

test('invalid settings stop the start with exit 2 and a message naming the key', async () => {
  const cases = [
    [{ KIMI_FOO: '1' }, 'KIMI_FOO'],
    [{ PORT: 'x' }, 'PORT'],
    [{ QUEUE_MAX: '-1' }, 'QUEUE_MAX'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
  ] as const;
  // `serve` (the default command): with a valid configuration it would listen, so a timeout means "it started".
  const runs = await Promise.all(cases.map(([env]) => runCli([], { env: { ...upstreamEnv(), HOST: '127.0.0.1', ...env }, timeoutMs: 10_000 })));
  for (const [index, run] of runs.entries()) {
    const key = cases[index][1];
    assert.equal(run.timedOut, false, `${key}: the gateway must not start`);
    assert.equal(run.code, 2, `${key}: exit 2`);
    assert.match(run.stderr, new RegExp(`\\b${key}\\b`), `${key} is named`);
  }
  const unknownInFile = join(folder, 'unknown.json');
  writeFileSync(unknownInFile, JSON.stringify({ KIMI_TOKENZ: 'x' }));
  const fromFile = await runCli(['check', '--config', unknownInFile], { env: upstreamEnv() });
  assert.equal(fromFile.code, 2);
  assert.match(fromFile.stderr, /KIMI_TOKENZ/);
});

test('--config FILE supplies settings; the environment wins over the file', async () => {
  const inFile = simulator.issueAccount();
  const inEnv = simulator.issueAccount();
  const configFile = join(folder, 'config.json');
  // The file alone points the CLI at the simulator (no KIMI_*_URL in the environment) and has an invalid PORT
  // that the environment overrides.
  writeFileSync(
    configFile,
    JSON.stringify({ KIMI_BASE_URL: simulator.url, KIMI_AUTH_URL: simulator.url, KIMI_LEGACY_BASE_URL: simulator.url, KIMI_TOKENS: inFile.refreshToken, PORT: 'x' }),
  );
  const run = await runCli(['check', '--config', configFile], { env: { STATE_FILE: freshStateFile(), KIMI_TOKENS: inEnv.refreshToken, PORT: '0' } });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.stdout.includes(accountIdFor(inEnv.refreshToken)), 'the environment’s KIMI_TOKENS was used');
  assert.ok(!run.stdout.includes(accountIdFor(inFile.refreshToken)), 'the file’s KIMI_TOKENS was overridden');
  assertPrintsNoToken(run, [inFile, inEnv]);

  const fileOnly = await runCli(['check', '--config', configFile], { env: { STATE_FILE: freshStateFile() } });
  assert.equal(fileOnly.code, 2, 'without the environment the file’s invalid PORT stands');
  assert.match(fileOnly.stderr, /\bPORT\b/);
});

/** A loopback port nothing listens on (a Redis that is down). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function storedEntry(stateFile: string, key: string): string | undefined {
  return (JSON.parse(readFileSync(stateFile, 'utf8')) as { entries: Record<string, { value: string }> }).entries[key]?.value;
}

test('check covers the accounts add-account stored in the same STATE_FILE (no KIMI_TOKENS needed)', async () => {
  const first = simulator.issueAccount();
  const second = simulator.issueAccount();
  const env = upstreamEnv();
  for (const account of [first, second]) {
    const added = await runCli(['add-account', account.refreshToken], { env });
    assert.equal(added.code, 0, added.stderr);
  }
  const checked = await runCli(['check'], { env });
  assert.equal(checked.code, 0, checked.stderr);
  const rows = checked.stdout.trim().split('\n').slice(1);
  assert.equal(rows.length, 2, checked.stdout);
  for (const account of [first, second]) {
    assert.match(rows.find((row) => row.startsWith(accountIdFor(account.refreshToken))) ?? '', /\|\s*live\s*\|/);
  }
  assertPrintsNoToken(checked, [first, second]);
});

test('§3.4 with REDIS_URL set and Redis down, add-account and check refuse (exit 2) before any refresh rotates a token', async () => {
  const env = upstreamEnv({ REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
  const pasted = simulator.issueAccount();
  const configured = simulator.issueAccount();
  const [added, checked] = await Promise.all([
    runCli(['add-account', pasted.refreshToken], { env, timeoutMs: 15_000 }),
    runCli(['check'], { env: { ...env, KIMI_TOKENS: configured.refreshToken }, timeoutMs: 15_000 }),
  ]);
  for (const run of [added, checked]) {
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /Redis \(REDIS_URL\) is not reachable, so nothing was checked or stored/);
    assertPrintsNoToken(run, [pasted, configured]);
  }
  assert.equal(simulator.refreshCount(pasted.userId), 0, 'add-account did not rotate the pasted token');
  assert.equal(simulator.refreshCount(configured.userId), 0, 'check did not rotate the KIMI_TOKENS token');
});

test('with a reachable Redis, add-account stores there and check finds the account (no KIMI_TOKENS)', async () => {
  const redis = await startRedisServer();
  try {
    const account = simulator.issueAccount();
    const env = upstreamEnv({ REDIS_URL: redis.url });
    const added = await runCli(['add-account', account.refreshToken], { env });
    assert.equal(added.code, 0, added.stderr);
    const checked = await runCli(['check'], { env: { ...env, STATE_FILE: freshStateFile() } });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, new RegExp(`^${accountIdFor(account.refreshToken)}\\s*\\|.*\\|\\s*live\\s*\\|`, 'm'));
  } finally {
    await redis.stop();
  }
});

test('§3.4 add-account with the KIMI_TOKENS token of an account marked invalid keeps its rotated token and revives it', async () => {
  // Grace 0: the token from KIMI_TOKENS is dead once rotated, so only the stored rotated token can revive the account.
  const strict = await startSimulator({ chunkDelayMs: 1, refreshGraceSeconds: 0 });
  try {
    const account = strict.issueAccount();
    const id = accountIdFor(account.refreshToken);
    const env = { KIMI_BASE_URL: strict.url, KIMI_AUTH_URL: strict.url, KIMI_LEGACY_BASE_URL: strict.url, STATE_FILE: freshStateFile(), KIMI_TOKENS: account.refreshToken };
    const gateway = await startGatewayInstance(strict, env);
    try {
      assert.equal((await chat(gateway.url, { prompt: 'first' })).status, 200);
      // Kimi answers 401 twice: the reactive refresh works (the token rotates), the retried call is refused again.
      strict.setScenario('unauthenticated', { userId: account.userId, times: 2 });
      assert.equal((await chat(gateway.url, { prompt: 'refused' })).status, 401);
    } finally {
      await gateway.close();
    }
    assert.ok(storedEntry(env.STATE_FILE, `invalid:${id}`), 'set-up: the account is marked invalid');
    const rotated = (JSON.parse(storedEntry(env.STATE_FILE, `account:${id}`) ?? '{}') as { token?: string }).token;
    assert.ok(rotated && rotated !== account.refreshToken, 'set-up: the state file holds the rotated token');

    const added = await runCli(['add-account', account.refreshToken], { env });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, new RegExp(`^Added account ${id} `));
    assertPrintsNoToken(added, [account], [rotated]);
    const record = JSON.parse(storedEntry(env.STATE_FILE, `account:${id}`) ?? '{}') as { token?: string; source?: string };
    assert.equal(record.source, 'server', 'still a server account');
    assert.notEqual(record.token, account.refreshToken, 'the dead pasted token did not replace the rotated one');
    assert.equal(storedEntry(env.STATE_FILE, `invalid:${id}`), undefined, 'the invalid mark is gone');
    const checked = await runCli(['check'], { env });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  } finally {
    await strict.close();
  }
});

test('check takes KIMI_TOKENS entries in quotes or as kimi-auth= cookie strings, under the bare token\'s hash', async () => {
  const quoted = simulator.issueAccount();
  const cookie = simulator.issueAccount();
  const run = await runCli(['check'], { env: upstreamEnv({ KIMI_TOKENS: `"${quoted.refreshToken}",kimi-auth=${cookie.refreshToken}; Path=/` }) });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  for (const account of [quoted, cookie]) {
    assert.match(run.stdout, new RegExp(`^${accountIdFor(account.refreshToken)}\\s*\\|.*\\|\\s*live\\s*\\|`, 'm'));
  }
  assertPrintsNoToken(run, [quoted, cookie]);
});

test('demo prints commands that work where the gateway listens (HOST=::1 included), and stops on Ctrl+C', async () => {
  const { spawn } = await import('node:child_process');
  const { CLI_PATH } = await import('../support/run-cli.ts');
  const folder = mkdtempSync(join(tmpdir(), 'kfa-demo-'));
  const child = spawn(process.execPath, [CLI_PATH, 'demo'], {
    env: { ...process.env, HOST: '::1', PORT: '0', STATE_FILE: join(folder, 'state.json'), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    assert.ok(await waitUntil(() => output.includes('Press Ctrl+C'), 20_000), `demo printed: ${output}`);
    const url = /curl -s (\S+\/v1\/chat\/completions)/.exec(output)?.[1];
    assert.match(url ?? '', /^http:\/\/\[::1\]:\d+\/v1\/chat\/completions$/);
    const answer = await request(url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'Hello' }] }) });
    assert.equal(answer.statusCode, 200);
    assert.match(((await answer.body.json()) as any).choices[0].message.content, /^Simulated reply to: "Hello"/);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  } finally {
    child.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});
