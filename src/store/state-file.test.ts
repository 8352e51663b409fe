import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStateFile, parseStateFile, type StoredEntry } from './state-file.ts';

test('the state file text equals JSON.stringify of its content, also when entries are reused from the cache', () => {
  const entries: [string, StoredEntry][] = [
    ['account:a', { value: '{"token":"t\\"1"}' }],
    ['conv:ü\n"x', { value: 'v', expiresAt: 1_800_000_000_000 }],
    ['empty', { value: '' }],
  ];
  const expected = `${JSON.stringify({ version: 1, entries: Object.fromEntries(entries) })}\n`;
  assert.equal(formatStateFile(entries), expected);
  assert.equal(formatStateFile(entries), expected, 'second flush, served from the per-entry cache');
  assert.deepEqual([...parseStateFile(expected)!], entries);
  assert.equal(formatStateFile([]), '{"version":1,"entries":{}}\n');
});
