// End to end (issue 5): two gateway replicas on one real redis-server and one simulator account: one refresh for a
// burst, one more after expiry and never a lost token (spec §3.4 rotation, §10.2 persist-before-use); a cooldown set
// by one replica honoured by the other; Redis killed mid-run; and a single instance restarted on its STATE_FILE.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { simulatedReply, startSimulator, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import { accountIdFor, storeKeys } from '../../src/accounts/account.ts';
import { chat, type ChatResult } from '../support/gateway-client.ts';
import { chatCallsOf, jumpableClock, refreshDirectly, startGatewayInstance, type GatewayInstance } from '../support/gateway-instance.ts';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.ts';

let redis: RedisServerHandle;
let folder: string;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  redis = await startRedisServer();
  folder = mkdtempSync(join(tmpdir(), 'kfa-replicas-'));
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await redis?.stop();
  rmSync(folder, { recursive: true, force: true });
});

async function simulatorFor(options: SimulatorOptions = {}): Promise<Simulator> {
  // Grace 0: a rotated-away refresh token dies at once, so a second rotation of the same token would fail loudly.
  const simulator = await startSimulator({ chunkDelayMs: 1, refreshGraceSeconds: 0, maxConcurrentStreamsPerAccount: 100, ...options });
  cleanups.push(() => simulator.close());
  return simulator;
}

let instanceCount = 0;
/**
 * A Redis database of its own per test: replicas on one Redis share every server account stored there (that is the
 * point), and an earlier test's account, unknown to this test's simulator, would join this test's pool.
 */
let databases = 0;
function ownDatabase(): string {
  databases += 1;
  return `${redis.url}/${databases}`;
}

async function replica(simulator: Simulator, env: Record<string, string>): Promise<GatewayInstance> {
  instanceCount += 1;
  const instance = await startGatewayInstance(simulator, {
    STATE_FILE: join(folder, `replica-${instanceCount}.json`),
    ACCOUNT_MAX_CONCURRENCY: '32',
    QUEUE_MAX: '200',
    ...env,
  });
  cleanups.push(() => instance.close());
  return instance;
}

/** `count` requests spread over the replicas, all at once. */
function hammer(replicas: GatewayInstance[], count: number, label: string, stream = false): Promise<ChatResult[]> {
  return Promise.all(Array.from({ length: count }, (_unused, index) => chat(replicas[index % replicas.length].url, { prompt: `${label} ${index}`, stream })));
}

function assertAllAnswered(results: ChatResult[], label: string): void {
  for (const [index, result] of results.entries()) {
    assert.equal(result.status, 200, `${label} ${index}: ${JSON.stringify(result.json ?? result.streamError)}`);
    assert.equal(result.text, simulatedReply({ userText: `${label} ${index}`, turn: 1 }).text, `${label} ${index}: the whole answer`);
  }
}

async function storedToken(instance: GatewayInstance, originalToken: string): Promise<string> {
  const text = await instance.gateway.store.get(storeKeys.account(accountIdFor(originalToken)));
  assert.ok(text, 'the account record is in the store');
  return (JSON.parse(text) as { token: string }).token;
}

test('two replicas, one Redis, 40 concurrent requests on a cold account: exactly one refresh; after expiry exactly one more; the stored token is the live one (§3.4, §10.2)', async () => {
  const clock = jumpableClock();
  const simulator = await simulatorFor({ clock: clock.now });
  const account = simulator.issueAccount();
  // Hold each refresh 300 ms so that both replicas are certainly waiting on the same cold account at once.
  simulator.setScenario('slow-refresh', { userId: account.userId });
  const env = { KIMI_TOKENS: account.refreshToken, REDIS_URL: ownDatabase() };
  // Started side by side and hammered at once: each replica's start-up catalogue fetch and the 40 requests all
  // race for the same cold account.
  const replicas = await Promise.all([replica(simulator, env), replica(simulator, env)]);
  assert.ok(replicas.every((instance) => instance.gateway.store.kind.startsWith('redis')), 'both replicas run on Redis');

  assertAllAnswered(await hammer(replicas, 40, 'cold'), 'cold');
  assert.equal(simulator.refreshCount(account.userId), 1, 'one refresh for 40 requests on two replicas');
  const afterFirst = await storedToken(replicas[0], account.refreshToken);
  assert.notEqual(afterFirst, account.refreshToken, 'the rotated refresh token replaced the original in Redis');
  assert.equal(await storedToken(replicas[1], account.refreshToken), afterFirst, 'both replicas see the same record');

  // Every access token the replicas hold is now expired upstream (900 s lifetime): each request gets a 401 first.
  clock.advance(1_000_000);
  assertAllAnswered(await hammer(replicas, 40, 'expired', true), 'expired');
  assert.equal(simulator.refreshCount(account.userId), 2, 'exactly one more refresh across both replicas');

  const afterSecond = await storedToken(replicas[1], account.refreshToken);
  assert.notEqual(afterSecond, afterFirst, 'the second rotation was stored');
  assert.equal((await refreshDirectly(simulator.url, afterFirst)).status, 401, 'the token rotated away is dead (grace 0)');
  assert.equal((await refreshDirectly(simulator.url, afterSecond)).status, 200, 'the token in Redis is the live one: nothing was lost');
});

test('a cooldown from a 429 with Retry-After on replica A is honoured by replica B without calling upstream (§10.6)', async () => {
  const simulator = await simulatorFor();
  const account = simulator.issueAccount();
  const env = { KIMI_TOKENS: account.refreshToken, REDIS_URL: ownDatabase(), ACCOUNT_COOLDOWN_MS: '30000' };
  const [replicaA, replicaB] = [await replica(simulator, env), await replica(simulator, env)];
  for (const instance of [replicaA, replicaB]) assert.equal((await chat(instance.url, { prompt: 'warm up' })).status, 200);

  simulator.setScenario('http-429', { userId: account.userId, times: 1 });
  const limited = await chat(replicaA.url, { prompt: 'limit me' });
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error.code, 'rate_limited');
  assert.equal(limited.headers['retry-after'], '7', 'the upstream hint, not the 30 s default');

  const callsBefore = chatCallsOf(simulator, account.userId).length;
  for (const stream of [false, true]) {
    const onB = await chat(replicaB.url, { prompt: `on replica B (stream ${stream})`, stream });
    assert.equal(onB.status, 429, `stream ${stream}: ${JSON.stringify(onB.json)}`);
    assert.equal(onB.json.error.code, 'rate_limited');
    const retryAfter = Number(onB.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 7, `Retry-After ${retryAfter} is the time left of A's cooldown`);
    assert.equal(onB.chunks.length, 0, 'no content before the error');
  }
  assert.equal(chatCallsOf(simulator, account.userId).length, callsBefore, 'replica B did not call upstream for a cooling account');
});

test('Redis killed mid-run (requests in flight on both replicas): every request is still answered, and after Redis returns too', async () => {
  const ownRedis = await startRedisServer();
  cleanups.push(() => ownRedis.stop());
  const simulator = await simulatorFor();
  const account = simulator.issueAccount();
  const env = { KIMI_TOKENS: account.refreshToken, REDIS_URL: ownRedis.url };
  const replicas = [await replica(simulator, env), await replica(simulator, env)];
  assertAllAnswered(await hammer(replicas, 4, 'before'), 'before');

  // [[sim:slow]] keeps these streams open (50 ms per frame) while Redis dies under them.
  const inFlight = Promise.all(
    Array.from({ length: 10 }, (_unused, index) => chat(replicas[index % 2].url, { prompt: `slow ${index} [[sim:slow]]`, stream: index % 2 === 0 })),
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
  const killedAt = Date.now();
  await ownRedis.stop();
  for (const [index, result] of (await inFlight).entries()) {
    assert.equal(result.status, 200, `in flight ${index}: ${JSON.stringify(result.json)}`);
    assert.equal(result.streamError, undefined, `in flight ${index} was not cut`);
    assert.equal(result.text, simulatedReply({ userText: `slow ${index} [[sim:slow]]`, turn: 1 }).text);
  }
  const during = await hammer(replicas, 10, 'during');
  assertAllAnswered(during, 'during');
  assert.ok(Date.now() - killedAt < 15_000, 'no request waited long on the dead Redis');
  assert.ok(replicas.some((instance) => instance.logs().includes('redis unavailable; serving from local state')), 'the outage was noticed and logged');

  await ownRedis.restart();
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  assertAllAnswered(await hammer(replicas, 6, 'after'), 'after');
});

test('single instance without Redis: a restart on the same STATE_FILE keeps the rotated refresh token (the original is dead upstream)', async () => {
  const clock = jumpableClock();
  const simulator = await simulatorFor({ clock: clock.now });
  const account = simulator.issueAccount();
  const stateFile = join(folder, 'single', 'state.json');
  const env = { KIMI_TOKENS: account.refreshToken, STATE_FILE: stateFile };

  const first = await startGatewayInstance(simulator, env);
  assert.equal((await chat(first.url, { prompt: 'before restart' })).status, 200);
  await first.close();
  assert.equal(simulator.refreshCount(account.userId), 1);
  assert.equal(statSync(stateFile).mode & 0o777, 0o600, 'the state file holds tokens: mode 0600');
  const saved = JSON.stringify(JSON.parse(readFileSync(stateFile, 'utf8')));
  assert.ok(!saved.includes(account.refreshToken), 'the original token was replaced by the rotated one');
  assert.equal((await refreshDirectly(simulator.url, account.refreshToken)).status, 401, 'upstream: the original refresh token is dead');

  // Let every access token expire, so the restarted gateway must refresh with whatever token it kept.
  clock.advance(1_000_000);
  const control = await replica(simulator, { KIMI_TOKENS: account.refreshToken });
  const refused = await chat(control.url, { prompt: 'fresh state file' });
  assert.equal(refused.status, 401, 'control: with an empty state file only the dead original token is known');
  assert.equal(refused.json.error.code, 'invalid_token');

  const restarted = await startGatewayInstance(simulator, env);
  cleanups.push(() => restarted.close());
  const answer = await chat(restarted.url, { prompt: 'after restart' });
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  assert.equal(answer.text, simulatedReply({ userText: 'after restart', turn: 1 }).text);
  assert.equal(simulator.refreshCount(account.userId), 2, 'the restarted instance refreshed with the rotated token from the file');
});
