import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from './config.ts';

test('defaults follow contract.md', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.PORT, 8000);
  assert.equal(config.HOST, '0.0.0.0');
  assert.equal(config.KIMI_BASE_URL, 'https://www.kimi.com');
  assert.equal(config.KIMI_AUTH_URL, 'https://auth.kimi.com');
  assert.equal(config.KIMI_LEGACY_BASE_URL, 'https://kimi.moonshot.cn');
  assert.equal(config.KIMI_DIALECT, 'auto');
  assert.equal(config.CHAT_RETENTION_SECONDS, 600);
  assert.equal(config.ATTACHMENT_MAX_BYTES, 104857600);
  assert.equal(config.ACCOUNT_MAX_CONCURRENCY, 2);
  assert.deepEqual([config.QUEUE_MAX, config.QUEUE_TIMEOUT_MS], [100, 30000]);
  assert.deepEqual([config.UPSTREAM_CONNECT_TIMEOUT_MS, config.UPSTREAM_FIRST_BYTE_TIMEOUT_MS, config.UPSTREAM_IDLE_TIMEOUT_MS], [10000, 60000, 120000]);
  assert.equal(config.SHUTDOWN_GRACE_MS, 30000);
  assert.equal(config.LOG_LEVEL, 'info');
});

test('an unknown KIMI_* key or an invalid value fails, naming the key', () => {
  assert.throws(() => loadConfig({ env: { KIMI_BASEURL: 'x' } }), /KIMI_BASEURL/);
  assert.throws(() => loadConfig({ env: { PORT: 'eighty' } }), /PORT/);
  for (const odd of ['0x10', '1e3', '0b11', '8000.5']) assert.throws(() => loadConfig({ env: { PORT: odd } }), /Invalid setting PORT/, odd);
  assert.equal(loadConfig({ env: { PORT: ' 8080 ' } }).PORT, 8080);
  assert.equal(loadConfig({ configFile: undefined, env: {}, overrides: { PORT: 9000 } }).PORT, 9000);
  assert.throws(() => loadConfig({ env: { KIMI_DIALECT: 'v3' } }), /KIMI_DIALECT/);
  assert.throws(() => loadConfig({ env: { KIMI_BASE_URL: 'ftp://x' } }), /KIMI_BASE_URL/);
  assert.throws(() => loadConfig({ env: { ALLOW_PRIVATE_ATTACHMENT_URLS: 'maybe' } }), /ALLOW_PRIVATE_ATTACHMENT_URLS/);
  for (const map of ['{"kimi-x":', '[1]', 'null', '"text"']) assert.throws(() => loadConfig({ env: { KIMI_MODEL_MAP: map } }), /Invalid setting KIMI_MODEL_MAP: must be a JSON object/, map);
  assert.deepEqual(JSON.parse(loadConfig({ env: { KIMI_MODEL_MAP: '{"kimi-x":{"scenario":"S"}}' } }).KIMI_MODEL_MAP ?? ''), { 'kimi-x': { scenario: 'S' } });
});

test('environment wins over the config file; token lists split on commas and newlines', () => {
  const folder = mkdtempSync(join(tmpdir(), 'kfa-config-'));
  const file = join(folder, 'config.json');
  writeFileSync(file, JSON.stringify({ PORT: 9001, LOG_LEVEL: 'debug', KIMI_TOKENS: 'a,b' }));
  const tokensFile = join(folder, 'tokens.txt');
  writeFileSync(tokensFile, '# comment\nc\n d \n');
  const config = loadConfig({ env: { PORT: '9002', KIMI_TOKENS_FILE: tokensFile }, configFile: file });
  assert.equal(config.PORT, 9002);
  assert.equal(config.LOG_LEVEL, 'debug');
  assert.deepEqual(config.serverTokens, ['a', 'b', 'c', 'd']);
  writeFileSync(file, JSON.stringify({ NOPE: 1 }));
  assert.throws(() => loadConfig({ env: {}, configFile: file }), /Unknown setting NOPE/);
});

test('a blank value (Compose "X=${X}", an empty env-file line, null in the file) means the default, never 0', () => {
  const folder = mkdtempSync(join(tmpdir(), 'kfa-config-'));
  const file = join(folder, 'config.json');
  writeFileSync(file, JSON.stringify({ SHUTDOWN_GRACE_MS: null, QUEUE_TIMEOUT_MS: ' ' }));
  const config = loadConfig({ env: { PORT: '', CHAT_RETENTION_SECONDS: '', ACCOUNT_MAX_CONCURRENCY: '  ', REDIS_URL: '' }, configFile: file });
  assert.equal(config.PORT, 8000);
  assert.equal(config.CHAT_RETENTION_SECONDS, 600);
  assert.equal(config.ACCOUNT_MAX_CONCURRENCY, 2);
  assert.equal(config.SHUTDOWN_GRACE_MS, 30000);
  assert.equal(config.QUEUE_TIMEOUT_MS, 30000);
  assert.equal(config.REDIS_URL, undefined);
});

test('a millisecond setting longer than a Node timer can hold is refused, naming it (it would fire at once)', () => {
  for (const key of ['QUEUE_TIMEOUT_MS', 'UPSTREAM_IDLE_TIMEOUT_MS', 'SHUTDOWN_GRACE_MS', 'REQUEST_TIMEOUT_MS', 'ACCOUNT_COOLDOWN_MS']) {
    assert.throws(() => loadConfig({ env: { [key]: '2147483648' } }), new RegExp(`Invalid setting ${key}`));
    assert.equal(loadConfig({ env: { [key]: '2147483647' } })[key as 'QUEUE_TIMEOUT_MS'], 2147483647);
  }
});
