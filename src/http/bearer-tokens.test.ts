// End to end over loopback (issue 5, protocol spec §3.4): a Kimi token sent as `Authorization: Bearer` in quotes or
// as a `kimi-auth=<jwt>` cookie string is unwrapped as add-account does, instead of reaching Kimi as junk and
// leaving an invalid mark under the junk's hash; what still is not a token gets a 401 that names the problem.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startStack, type Stack } from '../../test/support/stack.ts';

let stack: Stack;

before(async () => {
  stack = await startStack({ env: { LOG_LEVEL: 'warn' } });
});
after(async () => {
  await stack?.close();
});

async function chatWith(authorization: string): Promise<{ status: number; body: string }> {
  const response = await request(`${stack.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: response.statusCode, body: await response.body.text() };
}

test('§3.4 quoted tokens and kimi-auth cookie strings in the Bearer header are used as the bare token', async () => {
  const forms: Array<(token: string, access: string) => string> = [
    (token) => `Bearer "${token}"`,
    (token) => `Bearer '${token}'`,
    (_token, access) => `Bearer kimi-auth=${access}`,
    (token) => `Bearer kimi-auth=${token}; Path=/; HttpOnly`,
    (token) => `Bearer ${token}, "${token}"`,
  ];
  for (const [index, form] of forms.entries()) {
    const account = stack.simulator.issueAccount();
    const answer = await chatWith(form(account.refreshToken, account.accessToken));
    assert.equal(answer.status, 200, `form ${index}: ${answer.body.slice(0, 200)}`);
  }
  assert.doesNotMatch(stack.logs(), /marked invalid/, 'no invalid mark was stored for a wrapped token');
});

test('a Bearer value that still is not a token after unwrapping: 401 invalid_token naming the problem, no token echoed', async () => {
  const account = stack.simulator.issueAccount();
  const cases: Array<[string, RegExp]> = [
    [`Bearer theme=${account.refreshToken}`, /Bearer token 1 looks like a cookie or a name=value pair/],
    [`Bearer ${account.refreshToken}, session=${account.refreshToken}; Path=/`, /Bearer token 2 looks like a cookie/],
    [`Bearer ab"${account.refreshToken}`, /Bearer token 1 contains quote characters/],
  ];
  for (const [authorization, message] of cases) {
    const answer = await chatWith(authorization);
    assert.equal(answer.status, 401, answer.body.slice(0, 200));
    const error = (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'invalid_token');
    assert.match(error.message, message);
    assert.ok(!answer.body.includes(account.refreshToken), 'the token is not echoed');
    assert.doesNotMatch(answer.body, /eyJ/);
  }
  assert.equal(stack.simulator.refreshCount(account.userId), 0, 'none of it reached Kimi');
});
