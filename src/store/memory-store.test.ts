// Tests for the in-process store and its state file (contract STATE_FILE; protocol spec §10.2 durable rotation).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openMemoryStore } from './memory-store.ts';
import type { StoreLog } from './state-store.ts';

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'memory-store-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

function recordingLog(): StoreLog & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, error() {}, warn: (_details, message) => warnings.push(message) };
}

async function readEntries(path: string): Promise<Record<string, { value: string; expiresAt?: number }>> {
  return JSON.parse(await readFile(path, 'utf8')).entries;
}

describe('memory store in process', () => {
  test('values expire after their TTL and vanish from scan', async () => {
    const clock = fakeClock();
    const store = await openMemoryStore({ clock: clock.now });
    await store.set('cool:a', '1', { ttlMs: 1_000 });
    await store.set('cool:b', '2');
    assert.equal(await store.get('cool:a'), '1');
    clock.advance(1_000);
    assert.equal(await store.get('cool:a'), undefined);
    assert.deepEqual(await store.scan('cool:'), ['cool:b']);
    await store.close();
  });

  test('compareAndSet writes only over the expected value; compareAndDelete likewise', async () => {
    const store = await openMemoryStore();
    assert.equal(await store.compareAndSet('k', undefined, 'v1'), true);
    assert.equal(await store.compareAndSet('k', undefined, 'v2'), false);
    assert.equal(await store.compareAndSet('k', 'other', 'v2'), false);
    assert.equal(await store.compareAndSet('k', 'v1', 'v2'), true);
    assert.equal(await store.get('k'), 'v2');
    assert.equal(await store.compareAndDelete('k', 'v1'), false);
    assert.equal(await store.compareAndDelete('k', 'v2'), true);
    assert.equal(await store.get('k'), undefined);
    await store.close();
  });

  test('a lock is exclusive, expires, extends, and a stale holder cannot free the next holder', async () => {
    const clock = fakeClock();
    const store = await openMemoryStore({ clock: clock.now });
    const first = await store.acquireLock('lock:refresh:a', 1_000);
    assert.ok(first);
    assert.equal(await store.acquireLock('lock:refresh:a', 1_000), undefined);
    assert.equal(await first.extend(5_000), true);
    clock.advance(4_000);
    assert.equal(await store.acquireLock('lock:refresh:a', 1_000), undefined, 'extended lock still held');
    clock.advance(1_001);
    assert.equal(await first.extend(1_000), false, 'expired lock cannot be extended');
    const second = await store.acquireLock('lock:refresh:a', 1_000);
    assert.ok(second);
    await first.release();
    assert.equal(await store.acquireLock('lock:refresh:a', 1_000), undefined, 'first holder did not free it');
    await second.release();
    assert.ok(await store.acquireLock('lock:refresh:a', 1_000));
    assert.deepEqual(await store.scan('lock:'), [], 'locks are not data keys');
    await store.close();
  });
});

describe('memory store with a state file', () => {
  test('a durable set is on disk (mode 0600) when it resolves, and a new store reloads it', async () => {
    const filePath = join(directory, 'durable', 'state.json');
    const store = await openMemoryStore({ filePath, flushDelayMs: 60_000 });
    await store.set('account:a', 'rotated-refresh', { durable: true });
    assert.equal((await readEntries(filePath))['account:a'].value, 'rotated-refresh');
    assert.equal((await stat(filePath)).mode & 0o777, 0o600);
    await store.set('cool:a', 'x', { ttlMs: 60_000 });
    await store.close();
    const reopened = await openMemoryStore({ filePath });
    assert.equal(await reopened.get('account:a'), 'rotated-refresh');
    assert.equal(await reopened.get('cool:a'), 'x', 'close() flushed the debounced write');
    await reopened.close();
    const leftovers = (await readdir(join(directory, 'durable'))).filter((name) => name !== 'state.json');
    assert.deepEqual(leftovers, [], 'no temp or lock files are left behind');
  });

  test('non-durable writes are debounced, then written', async () => {
    const filePath = join(directory, 'debounce.json');
    const store = await openMemoryStore({ filePath, flushDelayMs: 30 });
    await store.set('k', 'v');
    await assert.rejects(readFile(filePath), { code: 'ENOENT' });
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal((await readEntries(filePath)).k.value, 'v');
    await store.close();
  });

  test('expired entries are not written and TTLs survive a reload', async () => {
    const clock = fakeClock();
    const filePath = join(directory, 'ttl.json');
    const store = await openMemoryStore({ filePath, clock: clock.now });
    await store.set('short', '1', { ttlMs: 100 });
    await store.set('long', '2', { ttlMs: 10_000, durable: true });
    clock.advance(200);
    await store.set('other', '3', { durable: true });
    const onDisk = await readEntries(filePath);
    assert.equal(onDisk.short, undefined);
    assert.equal(onDisk.long.expiresAt, 1_000_000 + 10_000);
    await store.close();
    clock.advance(10_000);
    const reopened = await openMemoryStore({ filePath, clock: clock.now });
    assert.equal(await reopened.get('long'), undefined);
    assert.equal(await reopened.get('other'), '3');
    await reopened.close();
  });

  test('a corrupt file is moved aside with a warning, never silently dropped', async () => {
    const filePath = join(directory, 'corrupt', 'state.json');
    const first = await openMemoryStore({ filePath });
    await first.close();
    await writeFile(filePath, '{"version":1,"entries":{"account:a":', { mode: 0o600 });
    const log = recordingLog();
    const store = await openMemoryStore({ filePath, log });
    assert.equal(log.warnings.length, 1);
    assert.match(log.warnings[0], /corrupt/);
    const names = await readdir(join(directory, 'corrupt'));
    const aside = names.find((name) => name.startsWith('state.json.corrupt-'));
    assert.ok(aside, `moved-aside file exists in ${names.join(', ')}`);
    assert.equal(await readFile(join(directory, 'corrupt', aside), 'utf8'), '{"version":1,"entries":{"account:a":');
    assert.equal(await store.get('account:a'), undefined);
    await store.set('k', 'v', { durable: true });
    assert.equal((await readEntries(filePath)).k.value, 'v');
    await store.close();
  });

  test('a missing file and directory are an empty state', async () => {
    const store = await openMemoryStore({ filePath: join(directory, 'new', 'deeper', 'state.json') });
    assert.deepEqual(await store.scan(''), []);
    await store.close();
  });

  test('two processes over one file: an added account appears and neither loses the other\'s writes', async () => {
    const filePath = join(directory, 'shared.json');
    const gateway = await openMemoryStore({ filePath, syncIntervalMs: 0 });
    await gateway.set('account:a', 'token-a1', { durable: true });
    const addAccount = await openMemoryStore({ filePath, syncIntervalMs: 0 });
    // The gateway rotates a token after the add-account process loaded the file, before it writes.
    await gateway.set('account:a', 'token-a2', { durable: true });
    await addAccount.set('account:b', 'token-b', { durable: true });
    await addAccount.close();
    assert.equal((await readEntries(filePath))['account:a'].value, 'token-a2', 'add-account kept the rotation');
    await gateway.syncFromFile();
    assert.equal(await gateway.get('account:b'), 'token-b', 'gateway sees the new account');
    await gateway.set('conv:1', 'x', { durable: true });
    const onDisk = await readEntries(filePath);
    assert.equal(onDisk['account:b'].value, 'token-b');
    assert.equal(onDisk['account:a'].value, 'token-a2');
    await gateway.close();
  });

  test('the periodic sync picks up another process\'s change by itself', async () => {
    const filePath = join(directory, 'periodic.json');
    const gateway = await openMemoryStore({ filePath, syncIntervalMs: 50 });
    const other = await openMemoryStore({ filePath, syncIntervalMs: 0 });
    await other.set('account:new', 't', { durable: true });
    await other.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(await gateway.scan('account:'), ['account:new']);
    await gateway.close();
  });
});

describe('memory store with a journal for temporary chats (§10.3)', () => {
  const journalPrefixes = ['conv:', 'del:'];

  test('journal keys are appended beside the state file, which is not rewritten for them; a reopen replays them', async () => {
    const path = join(directory, 'journal-basic', 'state.json');
    const clock = fakeClock();
    const store = await openMemoryStore({ filePath: path, clock: clock.now, journalPrefixes, flushDelayMs: 60_000, syncIntervalMs: 0 });
    await store.set('account:a', 'token-a', { durable: true });
    const stateBefore = await stat(path);
    await store.set('conv:1', 'record-1');
    await store.set('del:1', 'job-1', { ttlMs: 5_000 });
    await store.set('conv:2', 'record-2');
    await store.delete('conv:2');
    await store.flush();
    const stateAfter = await stat(path);
    assert.deepEqual([stateAfter.ino, stateAfter.size, stateAfter.mtimeMs], [stateBefore.ino, stateBefore.size, stateBefore.mtimeMs], 'state file untouched');
    assert.deepEqual(Object.keys(await readEntries(path)), ['account:a']);
    const lines = (await readFile(`${path}.journal`, 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((line) => JSON.parse(line).k), ['conv:1', 'del:1', 'conv:2'], 'one line per changed key since the last flush (conv:2 set and deleted: one deletion)');
    assert.equal((await stat(`${path}.journal`)).mode & 0o777, 0o600);
    await store.close();

    const reopened = await openMemoryStore({ filePath: path, clock: clock.now, journalPrefixes, syncIntervalMs: 0 });
    assert.deepEqual([await reopened.get('account:a'), await reopened.get('conv:1'), await reopened.get('del:1'), await reopened.get('conv:2')], ['token-a', 'record-1', 'job-1', undefined]);
    clock.advance(5_000);
    assert.deepEqual(await reopened.scan('del:'), [], 'the expiry travelled with the line');
    await reopened.close();
  });

  test('a line cut short by a crash is skipped with a warning, and the next append starts a fresh line', async () => {
    const path = join(directory, 'journal-torn', 'state.json');
    const store = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    await store.set('conv:kept', 'yes');
    await store.close();
    await writeFile(`${path}.journal`, `${await readFile(`${path}.journal`, 'utf8')}{"k":"conv:torn","v":"hal`);
    const log = recordingLog();
    const reopened = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0, log });
    assert.deepEqual([await reopened.get('conv:kept'), await reopened.get('conv:torn')], ['yes', undefined]);
    assert.match(log.warnings.join('\n'), /unreadable lines/);
    await reopened.set('conv:after', 'ok');
    await reopened.close();
    const third = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    assert.equal(await third.get('conv:after'), 'ok');
    await third.close();
  });

  test('the journal is compacted to the live entries once it outgrows them', async () => {
    const path = join(directory, 'journal-compact', 'state.json');
    const store = await openMemoryStore({ filePath: path, journalPrefixes, flushDelayMs: 60_000, syncIntervalMs: 0 });
    for (let round = 0; round < 30; round += 1) {
      for (let index = 0; index < 100; index += 1) await store.set(`conv:${index}`, `round-${round}`);
      await store.flush();
    }
    const lines = (await readFile(`${path}.journal`, 'utf8')).trim().split('\n');
    assert.ok(lines.length < 2 * 100 + 1_000 + 100, `bounded: ${lines.length} lines for 100 live keys after 3,000 writes`);
    await store.close();
    const reopened = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    assert.equal(await reopened.get('conv:42'), 'round-29');
    assert.equal((await reopened.scan('conv:')).length, 100);
    await reopened.close();
  });

  test('a state file from before the journal moves its chat records into the journal on the first flush', async () => {
    const path = join(directory, 'journal-migrate', 'state.json');
    const old = await openMemoryStore({ filePath: path, syncIntervalMs: 0 });
    await old.set('account:a', 'token-a');
    await old.set('conv:old', 'record');
    await old.close();
    const store = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    await store.flush();
    assert.deepEqual(Object.keys(await readEntries(path)), ['account:a']);
    await store.close();
    const reopened = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    assert.equal(await reopened.get('conv:old'), 'record');
    await reopened.close();
  });

  test('once a journal exists it decides its keys: a stale copy in the state file cannot bring back a deleted chat', async () => {
    const path = join(directory, 'journal-stale', 'state.json');
    const gateway = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    await gateway.set('conv:gone', 'record', { durable: true });
    await gateway.delete('conv:gone');
    await gateway.close();
    // A half-finished migration: the state file still holds a copy the journal has deleted since.
    const older = await openMemoryStore({ filePath: path, syncIntervalMs: 0 });
    await older.set('conv:gone', 'stale', { durable: true });
    await older.close();
    const reopened = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    assert.equal(await reopened.get('conv:gone'), undefined);
    await reopened.flush();
    assert.equal('conv:gone' in (await readEntries(path)), false, 'the state file is rewritten without the stale copy');
    await reopened.close();
  });

  test('after an append fails, the next write replaces the journal whole (no fragment left to swallow a line)', async () => {
    const path = join(directory, 'journal-failed-append', 'state.json');
    const store = await openMemoryStore({ filePath: path, journalPrefixes, flushDelayMs: 60_000, syncIntervalMs: 0 });
    await store.set('conv:1', 'one');
    await store.flush();
    // Make the append fail: the journal's path becomes a directory for a moment.
    await rm(`${path}.journal`);
    await mkdir(`${path}.journal`);
    await store.set('conv:2', 'two');
    await assert.rejects(store.flush());
    await rm(`${path}.journal`, { recursive: true });
    await writeFile(`${path}.journal`, '{"k":"conv:1","v":"one"}\n{"k":"conv:2","v":"tw');
    await store.flush();
    const lines = (await readFile(`${path}.journal`, 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((line) => [line.k, line.v]).sort(), [['conv:1', 'one'], ['conv:2', 'two']]);
    await store.close();
  });

  test('another process writing the state file (add-account) leaves the journal keys alone', async () => {
    const path = join(directory, 'journal-merge', 'state.json');
    const gateway = await openMemoryStore({ filePath: path, journalPrefixes, syncIntervalMs: 0 });
    await gateway.set('conv:1', 'record', { durable: true });
    const cli = await openMemoryStore({ filePath: path, syncIntervalMs: 0 });
    await cli.set('account:new', 'token', { durable: true });
    await cli.close();
    await gateway.syncFromFile();
    assert.deepEqual([await gateway.get('account:new'), await gateway.get('conv:1')], ['token', 'record']);
    await gateway.close();
  });
});
