// Drift scenarios (issue 10) and QR login (§3.4, fields inferred) as seen on the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startSimulator, type Simulator } from './simulator.ts';
import { NEW_REQUIRED_HEADER } from './drift.ts';
import { answerText, chatBody, envelope, getJson, postChat, postJson } from './test-helpers.ts';

const AUTH = '/api/account.gateway.v1.AuthService';

async function withSimulator(run: (simulator: Simulator) => Promise<void>): Promise<void> {
  const simulator = await startSimulator();
  try {
    await run(simulator);
  } finally {
    await simulator.close();
  }
}

test('drift-renamed-event: answer frames arrive as block.content, never block.text (§3.6)', () =>
  withSimulator(async (simulator) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-renamed-event', { userId: account.userId });
    const chat = await postChat(simulator.url, account.accessToken, chatBody('hello'));
    assert.equal(chat.status, 200);
    assert.equal(answerText(chat.events), '');
    const renamed = chat.events.filter((event) => (event.block as Record<string, unknown> | undefined)?.content);
    assert.ok(renamed.length > 2);
    assert.ok(renamed.every((event) => String(event.mask).startsWith('block.content')));
    assert.deepEqual(chat.end, {});
  }));

test('drift-renamed-field: the chat event carries chatId instead of id (§3.6)', () =>
  withSimulator(async (simulator) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-renamed-field', { userId: account.userId });
    const chat = await postChat(simulator.url, account.accessToken, chatBody('hello'));
    const chatEvent = chat.events.find((event) => event.mask === 'chat.lastRequest');
    const fields = chatEvent?.chat as Record<string, unknown>;
    assert.equal(fields.id, undefined);
    assert.equal(fields.chatId, simulator.chats(account.userId)[0].id);
    assert.ok(answerText(chat.events).startsWith('Simulated reply'));
  }));

test('drift-required-header: Chat without the new header is invalid_argument; with it the turn runs (§3.3)', () =>
  withSimulator(async (simulator) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-required-header');
    const refused = await postChat(simulator.url, account.accessToken, chatBody('hello'));
    assert.equal(refused.status, 400);
    assert.match(refused.bodyText, /invalid_argument.*missing header x-msh-new-header/);
    const response = await request(`${simulator.url}/apiv2/kimi.gateway.chat.v1.ChatService/Chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/connect+json', [NEW_REQUIRED_HEADER]: '1' },
      body: envelope(chatBody('hello')),
    });
    await response.body.arrayBuffer();
    assert.equal(response.statusCode, 200);
  }));

test('drift-moved-endpoint: Chat answers 404 unimplemented at the documented path (§3.5)', () =>
  withSimulator(async (simulator) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-moved-endpoint', { userId: account.userId, times: 1 });
    const moved = await postChat(simulator.url, account.accessToken, chatBody('hello'));
    assert.deepEqual([moved.status, JSON.parse(moved.bodyText).code], [404, 'unimplemented']);
    assert.equal((await postChat(simulator.url, account.accessToken, chatBody('hello'))).status, 200, 'times: 1 reverts');
  }));

test('drift-refresh-moved: RefreshToken answers 404, the web GET refresh still works (§3.4, §9 D3)', () =>
  withSimulator(async (simulator) => {
    const account = simulator.issueAccount();
    simulator.setScenario('drift-refresh-moved');
    const moved = await postJson(simulator.url, `${AUTH}/RefreshToken`, { refresh_token: account.refreshToken });
    assert.deepEqual([moved.status, moved.json.code], [404, 'unimplemented']);
    const rest = await getJson(simulator.url, '/api/auth/token/refresh', account.refreshToken);
    assert.equal(rest.status, 200);
    assert.ok(rest.json.access_token);
  }));

test('QR login: create, pending, scanned, confirmed with a token pair that works (§3.4, inferred fields)', () =>
  withSimulator(async (simulator) => {
    const created = await postJson(simulator.url, `${AUTH}/CreateLoginQRCode`, {});
    assert.equal(created.status, 200);
    const id = String(created.json.id);
    assert.match(String(created.json.url), /^http:\/\/127\.0\.0\.1:\d+\/qr-login\//);
    assert.ok(Date.parse(String(created.json.expireTime)) > Date.now());
    const status = async () => (await postJson(simulator.url, `${AUTH}/GetLoginQRCodeStatus`, { id })).json;
    assert.deepEqual(await status(), { status: 'STATUS_PENDING' });
    assert.equal((await postJson(simulator.url, `/__simulator/qr/${id}/scan`, {})).status, 200);
    assert.deepEqual(await status(), { status: 'STATUS_SCANNED' });
    const confirmed = await postJson(simulator.url, `/__simulator/qr/${id}/confirm`, {});
    const final = await status();
    assert.equal(final.status, 'STATUS_CONFIRMED');
    assert.equal(final.userId, confirmed.json.userId);
    const refreshed = await postJson(simulator.url, `${AUTH}/RefreshToken`, { refresh_token: final.refreshToken });
    assert.equal(refreshed.status, 200);
    const user = await postJson(simulator.url, '/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser', {}, String(final.accessToken));
    assert.equal((user.json.user as { id: string }).id, final.userId);
    assert.equal((await postJson(simulator.url, `${AUTH}/GetLoginQRCodeStatus`, { id: 'nope' })).status, 404);
    assert.equal((await postJson(simulator.url, '/__simulator/qr/nope/confirm', {})).status, 404);
  }));

test('QR login: an unconfirmed code expires after its lifetime', async () => {
  let now = Date.now();
  const simulator = await startSimulator({ clock: () => now });
  try {
    const created = await postJson(simulator.url, `${AUTH}/CreateLoginQRCode`, {});
    now += 121_000;
    const status = await postJson(simulator.url, `${AUTH}/GetLoginQRCodeStatus`, { id: created.json.id });
    assert.deepEqual(status.json, { status: 'STATUS_EXPIRED' });
    assert.equal((await postJson(simulator.url, `/__simulator/qr/${created.json.id}/confirm`, {})).status, 409);
  } finally {
    await simulator.close();
  }
});
