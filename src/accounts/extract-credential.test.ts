import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractCredential, shellWords, unwrapToken } from './extract-credential.ts';

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS512', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJlLXNpZ25hdHVyZQ`;
}

const now = Date.UTC(2026, 10, 28);
const refresh = jwt({ iss: 'account', typ: 'refresh', sub: 'd5ig6pin7541vtcbh9t0', exp: now / 1000 + 86400 * 90 });
const access = jwt({ iss: 'account', typ: 'access', sub: 'd5ig6pin7541vtcbh9t0', exp: now / 1000 + 900 });

test('a bare refresh token (with or without "Bearer" and quotes) is taken as is', () => {
  for (const input of [refresh, `Bearer ${refresh}`, `"${refresh}"`, `  ${refresh}\n`]) {
    const result = extractCredential(input, now);
    assert.deepEqual([result.token, result.kind, result.source, result.warnings], [refresh, 'refresh', 'token', []]);
  }
});

test('an access JWT is accepted with a short-lived warning (spec §9 D2)', () => {
  const result = extractCredential(access, now);
  assert.equal(result.kind, 'access');
  assert.match(result.warnings[0], /expires in 15 minute/);
});

test('the kimi-auth cookie value is picked out of a cookie header', () => {
  const result = extractCredential(`_ga=GA1.1.5; kimi-auth=${access}; theme=dark`, now);
  assert.deepEqual([result.token, result.source], [access, 'cookie']);
});

test('localStorage JSON prefers refresh_token over access_token, also when values are JSON-encoded strings', () => {
  const storage = JSON.stringify({ access_token: access, refresh_token: JSON.stringify(refresh), theme: 'dark' });
  const result = extractCredential(storage, now);
  assert.deepEqual([result.token, result.kind, result.source], [refresh, 'refresh', 'local-storage']);
  const legacyArray = JSON.stringify({ refresh_token: refresh.split('.') });
  assert.equal(extractCredential(legacyArray, now).token, refresh);
});

test('a real-looking "Copy as cURL" command yields the refresh token from the RefreshToken body before the bearer', () => {
  const command = `curl 'https://auth.kimi.com/api/account.gateway.v1.AuthService/RefreshToken' \\
  -H 'accept: */*' \\
  -H 'authorization: Bearer ${access}' \\
  -H 'connect-protocol-version: 1' \\
  -H 'content-type: application/json' \\
  -b 'kimi-auth=${access}; _ga=GA1.1.123' \\
  -H 'origin: https://www.kimi.com' \\
  --data-raw '{"refresh_token":"${refresh}"}'`;
  const result = extractCredential(command, now);
  assert.deepEqual([result.token, result.kind, result.source], [refresh, 'refresh', 'curl']);
});

test('a cURL of a chat call yields its bearer access token', () => {
  const command = `curl "https://www.kimi.com/apiv2/kimi.gateway.chat.v1.ChatService/Chat" -H "Authorization: Bearer ${access}" -H "content-type: application/connect+json" --data-binary @body.bin`;
  assert.equal(extractCredential(command, now).token, access);
});

test('nothing usable is a 400 that does not echo the input', () => {
  for (const input of ['', 'hello world', '{"theme":"dark"}', "curl 'https://example.com' -H 'accept: */*'"]) {
    assert.throws(
      () => extractCredential(input, now),
      (error: { status?: number; message: string }) => error.status === 400 && !error.message.includes('dark'),
    );
  }
});

test('shellWords honours quotes, escapes and continuations', () => {
  assert.deepEqual(shellWords(`curl 'a b' "c \\"d\\"" \\\n -H $'x: y'`), ['curl', 'a b', 'c "d"', '-H', 'x: y']);
});

test('unwrapToken: the single-token forms a header or KIMI_TOKENS may hold (quotes, Bearer, kimi-auth cookie)', () => {
  for (const input of [refresh, `"${refresh}"`, `'${refresh}'`, `Bearer ${refresh}`, `kimi-auth=${refresh}; Path=/`, `${refresh};`]) {
    assert.equal(unwrapToken(input), refresh);
  }
  assert.equal(unwrapToken('theme=dark'), 'theme=dark', 'anything else is left for the caller to judge');
});

test('a malformed percent-escape in a kimi-auth cookie does not throw', () => {
  assert.equal(unwrapToken('kimi-auth=abc%E0def'), 'abc%E0def');
  assert.equal(extractCredential('kimi-auth=abc%zzdef; theme=dark', now).token, 'abc%zzdef');
});
