// --record DIR (issue 10): the saved wire exchange is useful (decoded frames, statuses) and holds no token,
// cookie, JWT or account identifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../simulator/simulator.ts';
import { createDirectoryRecorder } from './recorder.ts';
import { runDoctor } from './run-doctor.ts';
import { fixtureFromExchange } from './wire-fixture.ts';
import type { WireExchange } from './wire-tap.ts';

test('recorded fixtures of a healthy and a drifted run contain no secret (grep for the tokens and eyJ)', async () => {
  const simulator = await startSimulator();
  const directory = await mkdtemp(join(tmpdir(), 'kfa-doctor-record-'));
  try {
    const healthy = simulator.issueAccount();
    const drifted = simulator.issueAccount();
    simulator.setScenario('drift-renamed-event', { userId: drifted.userId });
    const report = await runDoctor({
      accounts: [healthy.refreshToken, `legacy:${healthy.legacyRefreshToken}`, drifted.refreshToken],
      baseUrl: simulator.url,
      authUrl: simulator.url,
      legacyBaseUrl: simulator.url,
      dialectMode: 'auto',
      record: createDirectoryRecorder(directory),
    });
    assert.equal(report.ok, false);
    const names = (await readdir(directory)).sort();
    assert.ok(names.length >= 15, `${names.length} fixtures`);
    const texts = await Promise.all(names.map((name) => readFile(join(directory, name), 'utf8')));
    const all = texts.join('\n');
    const bearerTokens = simulator.requests.map((request) => request.headers.authorization?.replace(/^Bearer /, '')).filter((token) => token !== undefined);
    const secrets = [healthy.refreshToken, healthy.accessToken, healthy.legacyRefreshToken, drifted.refreshToken, ...bearerTokens];
    for (const secret of secrets) assert.ok(!all.includes(secret), 'a token leaked into a fixture');
    assert.ok(!all.includes('eyJ'), 'a JWT (or a fragment of one) leaked into a fixture');
    for (const userId of [healthy.userId, drifted.userId]) assert.ok(!all.includes(userId), 'an account id leaked into a fixture');
    // Still useful: the drifted Chat stream is there, decoded, with its renamed frames.
    const chatName = names.find((name) => name.includes('-chat-Chat'))!;
    const chat = JSON.parse(texts[names.indexOf(chatName)]);
    assert.equal(chat.request.headers.authorization, 'Bearer [redacted]');
    assert.equal(chat.response.status, 200);
    assert.ok(chat.response.body.frames.length > 5);
    const refresh = JSON.parse(texts[names.findIndex((name) => name.endsWith('-refresh-RefreshToken.json'))]);
    assert.deepEqual(refresh.request.body, { refresh_token: '[redacted]' });
    assert.deepEqual(Object.keys(refresh.response.body).sort(), ['accessToken', 'refreshToken']);
    assert.ok(names.some((name) => /-chat-stream\.json$/.test(name)), 'the legacy SSE stream is recorded too');
    assert.ok(all.includes('block.content'), 'the drift is visible in the fixtures');
  } finally {
    await rm(directory, { recursive: true, force: true });
    await simulator.close();
  }
});

test('cookies, query signatures and secret-named fields are redacted whatever they look like', () => {
  const exchange: WireExchange = {
    step: 'chat',
    target: 'abc',
    method: 'POST',
    url: 'https://www.kimi.com/apiv2-files/sign-obj/x?filename=a.png&sig=opaque-signature&t=o',
    requestHeaders: { cookie: 'kimi-auth=opaque-cookie-value; theme=dark', 'x-traffic-id': 'user-123456', 'content-type': 'application/json' },
    requestBody: Buffer.from(JSON.stringify({ refreshToken: 'not-a-jwt-but-secret', nested: { password: 'hunter22', text: 'user-123456 says hi' } })),
    status: 200,
    responseHeaders: { 'set-cookie': 'kimi-auth=another-opaque; Path=/', 'content-type': 'application/json' },
    responseBody: Buffer.from('{"ok":true}'),
    isTruncated: false,
    startedAt: 0,
  };
  const fixture = fixtureFromExchange(exchange, new Map([['user-123456', '[user-id]']]));
  const text = JSON.stringify(fixture);
  for (const secret of ['opaque-cookie-value', 'opaque-signature', 'not-a-jwt-but-secret', 'hunter22', 'another-opaque', 'user-123456']) {
    assert.ok(!text.includes(secret), `${secret} leaked`);
  }
  assert.equal(fixture.request.headers.cookie, 'kimi-auth=[redacted]; theme=[redacted]');
  assert.match(fixture.request.url, /filename=\[redacted\]&sig=\[redacted\]/);
  assert.deepEqual(fixture.request.body, { refreshToken: '[redacted]', nested: { password: '[redacted]', text: '[user-id] says hi' } });
});
