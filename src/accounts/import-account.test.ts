// Tests for importAccount (issue 10; protocol spec §3.4 rotation, §10.2 "never lose a rotated token"): re-adding an
// account that is stored and marked invalid asks Kimi again with its stored rotated token, and a refusal puts back
// exactly what was there. Real simulator on loopback, real dialects, the pool over a memory store.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSimulator, type SimulatedAccount, type Simulator } from '../../simulator/simulator.ts';
import { createDialectsFromConfig, createUpstreamHttpFromConfig } from '../composition.ts';
import { loadConfig } from '../config.ts';
import { AuthenticationError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import type { StateStore } from '../store/state-store.ts';
import type { UpstreamHttp } from '../upstream/upstream-http.ts';
import { accountIdFor, storeKeys, type AccountRecord } from './account.ts';
import { createAccountPool, type AccountPool } from './account-pool.ts';
import { importAccount } from './import-account.ts';

let simulator: Simulator;
let http: UpstreamHttp;
const open: Array<{ pool: AccountPool; store: StateStore }> = [];

before(async () => {
  // Grace 0: a rotated-away refresh token is refused at once (§3.4), so using the old token would show.
  simulator = await startSimulator({ chunkDelayMs: 1, refreshGraceSeconds: 0 });
  http = createUpstreamHttpFromConfig(loadConfig({ env: {} }), 'kimi-free-api-test');
});
after(async () => {
  for (const { pool, store } of open) {
    await pool.close();
    await store.close();
  }
  await http.close();
  await simulator.close();
});

interface InvalidServerAccount {
  pool: AccountPool;
  store: StateStore;
  account: SimulatedAccount;
  id: string;
}

/** A server-pool account whose token was rotated by a refresh, then refused on the retried call: marked invalid. */
async function invalidServerAccount(): Promise<InvalidServerAccount> {
  const config = loadConfig({ env: { KIMI_BASE_URL: simulator.url, KIMI_AUTH_URL: simulator.url, KIMI_LEGACY_BASE_URL: simulator.url } });
  const store = await openMemoryStore();
  const pool = createAccountPool({ store, dialects: createDialectsFromConfig(config, http), reloadIntervalMs: 0, sweepIntervalMs: 0 });
  open.push({ pool, store });
  const account = simulator.issueAccount();
  const [added] = await pool.addServerAccounts([account.refreshToken]);
  const lease = await pool.lease();
  await lease.session(); // refresh #1 rotates the token
  await lease.reportFailure(new AuthenticationError('Kimi refused the token during chat.'));
  lease.release();
  const [snapshot] = await pool.snapshot([added]);
  assert.equal(snapshot.state, 'invalid', 'set-up: the account is marked invalid');
  return { pool, store, account, id: added.id };
}

async function recordOf(store: StateStore, id: string): Promise<AccountRecord | undefined> {
  const text = await store.get(storeKeys.account(id));
  return text === undefined ? undefined : (JSON.parse(text) as AccountRecord);
}

test('§3.4 re-adding the original token of an invalid server account keeps its rotated token and asks Kimi again', async () => {
  const { pool, store, account, id } = await invalidServerAccount();
  const rotated = (await recordOf(store, id))?.token;
  assert.ok(rotated && rotated !== account.refreshToken, 'set-up: the stored token is the rotated one');

  const imported = await importAccount(pool, account.refreshToken, AbortSignal.timeout(10_000), { store });
  assert.equal(imported.account.id, id);
  assert.equal(imported.check.state, 'live', 'the stored rotated token was checked, not the dead pasted one');
  const record = await recordOf(store, id);
  assert.equal(record?.source, 'server', 'still a server account');
  assert.notEqual(record?.token, account.refreshToken, 'the dead pasted token did not replace the rotated one');
  assert.equal(await store.get(storeKeys.invalid(id)), undefined, 'the invalid mark is lifted');
  assert.ok(pool.serverAccounts().some((item) => item.id === id), 'still in the server pool');
  const lease = await pool.lease();
  assert.equal(lease.account.id, id);
  await lease.session();
  lease.release();
});

test('§3.4 a re-add that Kimi still refuses puts the same invalid mark back and leaves the record as it was', async () => {
  const { pool, store, account, id } = await invalidServerAccount();
  const recordBefore = await store.get(storeKeys.account(id));
  const markBefore = await store.get(storeKeys.invalid(id));
  simulator.setScenario('refresh-fails', { userId: account.userId });
  try {
    await assert.rejects(importAccount(pool, account.refreshToken, AbortSignal.timeout(10_000), { store }), (error: Error) => {
      assert.match(error.message, /^Kimi did not accept this refresh token \(.+\); nothing was stored\.$/);
      assert.match(error.message, /refused by Kimi/, 'the reason is the new refusal: Kimi was asked again');
      assert.doesNotMatch(error.message, /marked invalid/, 'not the old verdict repeated');
      assert.ok(!error.message.includes(account.refreshToken), 'no token in the message');
      return true;
    });
  } finally {
    simulator.reset();
  }
  assert.equal(simulator.refreshCount(account.userId), 1, 'the refused refresh rotated nothing');
  assert.equal(await store.get(storeKeys.account(id)), recordBefore, 'the record (rotated token, source server) is unchanged');
  assert.equal(await store.get(storeKeys.invalid(id)), markBefore, 'the same invalid mark is back');
  const [snapshot] = await pool.snapshot([{ id, dialect: 'current', kind: 'refresh', source: 'server', isShortLived: false }]);
  assert.equal(snapshot.state, 'invalid');
  assert.ok(pool.serverAccounts().some((item) => item.id === id), 'still in the server pool');
});

test('without the store, an invalid stored account is left exactly as it is (no token lost)', async () => {
  const { pool, store, account, id } = await invalidServerAccount();
  const recordBefore = await store.get(storeKeys.account(id));
  await assert.rejects(importAccount(pool, account.refreshToken, AbortSignal.timeout(10_000)), /marked invalid.*nothing was stored/);
  assert.equal(await store.get(storeKeys.account(id)), recordBefore);
  assert.equal(simulator.refreshCount(account.userId), 1, 'the old verdict stands without a new refresh');
});

test('a new token that Kimi refuses leaves nothing in the store', async () => {
  const { pool, store } = await invalidServerAccount();
  const stranger = simulator.issueAccount();
  const forged = `${stranger.refreshToken.slice(0, -6)}AAAAAA`;
  await assert.rejects(importAccount(pool, forged, AbortSignal.timeout(10_000), { store }), /nothing was stored/);
  const id = accountIdFor(forged);
  for (const key of [storeKeys.account(id), storeKeys.invalid(id), storeKeys.session(id)]) assert.equal(await store.get(key), undefined, key);
});
