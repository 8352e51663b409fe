// Fault suite (issue 7): shared infrastructure. Redis dying mid-run must not stop answers (the resilient
// store falls back to local state); a burst of requests on a cold account makes exactly one token refresh
// (single flight, spec §3.4 / §10.2), for server-pool accounts and for per-request Bearer tokens alike.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulatedReply } from '../../simulator/simulator.ts';
import { startRedisServer } from '../support/redis-server.ts';
import { startStack } from '../support/stack.ts';
import { chat } from '../support/gateway-client.ts';

test('Redis killed mid-run: streamed and plain requests are still answered, quickly, with the right text', async () => {
  const redis = await startRedisServer();
  const stack = await startStack({ serverPool: true, env: { REDIS_URL: redis.url } });
  try {
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'with redis' })).status, 200);
    assert.match(stack.gateway.store.kind, /^redis/, 'the gateway runs on Redis before the outage');
    await redis.stop();
    for (const [index, stream] of [false, true, false, true].entries()) {
      const prompt = `without redis ${index}`;
      const result = await chat(stack.gatewayUrl, { prompt, stream });
      assert.equal(result.status, 200, `request ${index}: ${JSON.stringify(result.json ?? result.streamError)}`);
      assert.equal(result.text, simulatedReply({ userText: prompt, turn: 1 }).text);
      assert.ok(result.elapsedMs < 5_000, `request ${index} took ${result.elapsedMs} ms`);
    }
  } finally {
    await stack.close();
    await redis.stop();
  }
});

for (const mode of ['server pool', 'Bearer token'] as const) {
  test(`refresh storm (${mode}): 100 concurrent requests on a cold account make exactly one refresh, all answered (§3.4)`, async () => {
    const stack = await startStack({
      serverPool: mode === 'server pool',
      simulator: { maxConcurrentStreamsPerAccount: 200 },
      env: { ACCOUNT_MAX_CONCURRENCY: '64', QUEUE_MAX: '200' },
    });
    try {
      const { userId } = stack.accounts[0];
      assert.equal(stack.simulator.refreshCount(userId), 0, 'the account is cold');
      stack.simulator.setScenario('slow-refresh', { userId });
      const headers = mode === 'Bearer token' ? { authorization: `Bearer ${stack.token}` } : undefined;
      const results = await Promise.all(Array.from({ length: 100 }, (_unused, index) => chat(stack.gatewayUrl, { prompt: `storm ${index}`, headers })));
      assert.deepEqual([...new Set(results.map((result) => result.status))], [200]);
      assert.equal(stack.simulator.refreshCount(userId), 1);
    } finally {
      await stack.close();
    }
  });
}
