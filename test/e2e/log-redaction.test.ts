// End to end (issue 6, logs): a gateway driven through successes, refreshes (proactive and after an upstream 401),
// per-request Bearer tokens, a forged token, upstream refusals, an add-account with a copied cURL command, and
// operator routes. Afterwards no token — original, access, rotated (read back from the simulator's wire and the
// state file) — nor any `eyJ`-prefixed text appears anywhere in the log; and each HTTP request left exactly one
// `"msg":"request"` line with its id, model, account hash, status, time to first byte and duration.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { accountIdFor } from '../../src/accounts/account.ts';
import { chat } from '../support/gateway-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const JWT_PATTERN = /eyJ[\w-]+\.[\w-]+\.[\w-]+/g;
let simulator: Simulator;
let stack: Stack;

before(async () => {
  simulator = await startSimulator({ chunkDelayMs: 1 });
  stack = await startStack({ serverPool: true, existingSimulator: simulator, env: { LOG_LEVEL: 'debug', ACCOUNT_COOLDOWN_MS: '1000' } });
});
after(async () => {
  await stack?.close();
  await simulator?.close();
});

interface Sent {
  requestId: string;
  kind: 'chat' | 'other';
  /** The account hash the request must be logged with, when one served it. */
  accountId?: string;
}

test('a varied run logs no token, no JWT-shaped text, and one complete "request" line per request', async () => {
  const sent: Sent[] = [];
  let ordinal = 0;
  const nextId = (label: string) => `redaction-${label}-${(ordinal += 1)}`;
  const serverAccount = stack.accounts[0];
  const bearerAccount = simulator.issueAccount();
  const addedAccount = simulator.issueAccount();

  async function ask(label: string, prompt: string, options: { stream?: boolean; headers?: Record<string, string>; accountId?: string; expect: number }) {
    const requestId = nextId(label);
    const result = await chat(stack.gatewayUrl, { prompt, stream: options.stream, headers: { 'x-request-id': requestId, ...options.headers } });
    assert.equal(result.status, options.expect, `${label}: ${JSON.stringify(result.json)}`);
    sent.push({ requestId, kind: 'chat', accountId: options.accountId });
  }
  async function call(label: string, method: 'GET' | 'POST', path: string, expect: number, body?: unknown, headers: Record<string, string> = {}) {
    const requestId = nextId(label);
    const response = await request(`${stack.gatewayUrl}${path}`, {
      method,
      headers: { 'x-request-id': requestId, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.body.text();
    assert.equal(response.statusCode, expect, `${label}: ${text.slice(0, 300)}`);
    sent.push({ requestId, kind: 'other' });
    return text;
  }

  const serverId = accountIdFor(serverAccount.refreshToken);
  const bearerId = accountIdFor(bearerAccount.refreshToken);
  await ask('success', 'hello', { accountId: serverId, expect: 200 });
  await ask('stream', 'hello stream', { stream: true, accountId: serverId, expect: 200 });
  await ask('slow-stream', 'slowly [[sim:slow]]', { stream: true, accountId: serverId, expect: 200 });
  await ask('bearer', 'my own token', { headers: { authorization: `Bearer ${bearerAccount.refreshToken}` }, accountId: bearerId, expect: 200 });
  // Secrets in headers a client might also send: a cookie and an x-api-key holding tokens.
  await ask('cookie', 'with cookie', {
    headers: { authorization: `Bearer ${bearerAccount.refreshToken}`, cookie: `kimi-auth=${bearerAccount.accessToken}`, 'x-api-key': bearerAccount.legacyRefreshToken },
    accountId: bearerId,
    expect: 200,
  });
  simulator.setScenario('unauthenticated', { userId: serverAccount.userId, times: 1 });
  await ask('refresh-after-401', 'after a 401', { accountId: serverId, expect: 200 });
  const forged = `${serverAccount.refreshToken.slice(0, -6)}AAAAAA`;
  await ask('forged', 'forged token', { headers: { authorization: `Bearer ${forged}` }, accountId: accountIdFor(forged), expect: 401 });
  await ask('paywall', 'paid [[sim:paywall]]', { accountId: serverId, expect: 403 });
  await ask('upstream-500', 'broken [[sim:http-500]]', { stream: true, accountId: serverId, expect: 502 });
  await ask('limited', 'limited [[sim:http-429]]', { headers: { authorization: `Bearer ${bearerAccount.refreshToken}` }, accountId: bearerId, expect: 429 });

  const curl =
    `curl 'https://www.kimi.com/apiv2/kimi.gateway.chat.v1.ChatService/Chat' \\\n  -H 'accept: */*' \\\n` +
    `  -H 'authorization: Bearer ${addedAccount.accessToken}' \\\n  -H 'content-type: application/connect+json' \\\n` +
    `  -H 'cookie: kimi-auth=${addedAccount.accessToken}; theme=dark' \\\n  --data-raw '{"refresh_token":"${addedAccount.refreshToken}"}'`;
  const added = JSON.parse(await call('add-account', 'POST', '/v1/accounts', 201, { input: curl }));
  assert.equal(added.account.id, accountIdFor(addedAccount.refreshToken), 'the refresh token was picked out of the cURL');
  await call('add-account-bad', 'POST', '/v1/accounts', 400, { input: `curl 'https://www.kimi.com/' -H 'authorization: Bearer ${forged}'` });
  await call('accounts', 'GET', '/v1/accounts', 200);
  await call('status', 'GET', '/v1/status', 200);
  await call('models', 'GET', '/v1/models', 200);
  await call('not-found', 'GET', '/v1/chat/completion', 404);
  await call('bad-body', 'POST', '/v1/chat/completions', 400, { model: 'kimi', messages: 'not a list' }, { authorization: `Bearer ${bearerAccount.refreshToken}` });

  // Close first: the last writes reach the state file, and every request line is out.
  await stack.gateway.close(200);
  const logs = stack.logs();
  const stateText = readFileSync(stack.stateFile, 'utf8');
  assert.ok(logs.length > 1000, 'the run produced a real log');

  // Every token the run handled: the originals, the forged one, and everything seen on the wire or stored.
  const secrets = new Set<string>([forged]);
  for (const account of [...stack.accounts, bearerAccount, addedAccount]) {
    for (const token of [account.refreshToken, account.accessToken, account.legacyRefreshToken]) secrets.add(token);
  }
  for (const text of [JSON.stringify(simulator.requests), stateText]) for (const match of text.matchAll(JWT_PATTERN)) secrets.add(match[0]);
  const rotated = [...stateText.matchAll(JWT_PATTERN)].map((match) => match[0]).filter((token) => !stack.accounts.some((account) => account.refreshToken === token));
  assert.ok(rotated.length >= 2, 'rotated tokens were collected from the state file');
  assert.ok(secrets.size >= 12, `collected ${secrets.size} tokens`);
  for (const secret of secrets) {
    const signature = secret.split('.')[2];
    assert.ok(!logs.includes(secret), 'a token appears in the log');
    assert.ok(!logs.includes(signature), 'a token signature appears in the log');
  }
  assert.doesNotMatch(logs, /eyJ/, 'nothing JWT-shaped in the log');

  const lines = logs.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);
  const requestLines = lines.filter((line) => line.msg === 'request');
  assert.equal(requestLines.length, sent.length, 'one request line per request, no more');
  const problems: string[] = [];
  for (const item of sent) {
    const matching = requestLines.filter((line) => line.requestId === item.requestId);
    if (matching.length !== 1) {
      problems.push(`${item.requestId}: ${matching.length} request lines`);
      continue;
    }
    const [line] = matching;
    if (typeof line.status !== 'number') problems.push(`${item.requestId}: no status`);
    if (typeof line.durationMs !== 'number') problems.push(`${item.requestId}: no durationMs`);
    if (typeof line.timeToFirstByteMs !== 'number') problems.push(`${item.requestId}: no timeToFirstByteMs`);
    else if (line.timeToFirstByteMs > line.durationMs) problems.push(`${item.requestId}: first byte after the end`);
    if (item.kind === 'chat') {
      if (line.model !== 'kimi') problems.push(`${item.requestId}: model ${line.model}`);
      if (line.account !== item.accountId) problems.push(`${item.requestId}: account ${line.account}, expected ${item.accountId}`);
    }
    // A slow stream (50 ms per frame) sends its first byte long before its end: the line must say so.
    if (item.requestId.includes('slow-stream') && typeof line.timeToFirstByteMs === 'number' && line.timeToFirstByteMs > line.durationMs / 2) {
      problems.push(`${item.requestId}: timeToFirstByteMs ${line.timeToFirstByteMs} of ${line.durationMs} ms is the end of the stream, not its first byte`);
    }
  }
  assert.deepEqual(problems, [], 'every request line is complete and right');
});
