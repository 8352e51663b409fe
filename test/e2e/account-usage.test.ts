/**
 * Per-account plan usage (issue 10: "quota, where the upstream reports it, is shown"): the gateway reads
 * GetSubscriptionStats (spec §3.9) in the background and GET /v1/accounts shows it, never a token.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { startStack } from '../support/stack.ts';

test('GET /v1/accounts shows the plan usage Kimi reports, fetched in the background', async () => {
  const stack = await startStack({ serverPool: true, env: { API_KEYS: 'usage-key' } });
  try {
    type Listing = { data: { id: string; quota?: { used: number; limit: number; label: string; resetAt?: number; plan?: string } }[] };
    const list = async () => {
      const response = await fetch(`${stack.gatewayUrl}/v1/accounts`, { headers: { authorization: 'Bearer usage-key' } });
      assert.equal(response.status, 200);
      const text = await response.text();
      assert.ok(!text.includes(stack.tokens[0]) && !text.includes('eyJ'), 'no token in the listing');
      return JSON.parse(text) as Listing;
    };
    let listing = await list();
    const deadline = Date.now() + 5000;
    while (!listing.data[0]?.quota && Date.now() < deadline) {
      await delay(50);
      listing = await list();
    }
    const quota = listing.data[0].quota;
    assert.ok(quota, 'usage appears once fetched');
    assert.deepEqual([quota.used, quota.limit, quota.label, quota.plan], [25, 100, '25% of the plan used', 'TYPE_FREE']);
    assert.ok(quota.resetAt && quota.resetAt > Date.now() + 29 * 86_400_000, 'the cycle end is reported');
    assert.ok(stack.simulator.requests.some((request) => request.path.endsWith('/GetSubscriptionStats')));
  } finally {
    await stack.close();
  }
});
