// Tests for credential classification (protocol spec §10.1, §3.4, §9 D2) and account ids.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthenticationError } from '../errors.ts';
import { makeJwt } from './__fixtures__/fake-kimi-upstream.ts';
import { accountIdFor } from './account.ts';
import { classifyCredential } from './classify-credential.ts';

const iat = 1_790_000_000;

describe('classifyCredential (§10.1)', () => {
  test('account-service tokens (iss account, or aud kimi.ai) are current', () => {
    const byIssuer = classifyCredential(makeJwt({ iss: 'account', typ: 'refresh', iat, exp: iat + 90 * 86_400 }));
    assert.deepEqual(
      { kind: byIssuer.kind, dialect: byIssuer.dialect, fallback: byIssuer.fallbackDialect, expiresAt: byIssuer.expiresAt },
      { kind: 'refresh', dialect: 'current', fallback: undefined, expiresAt: (iat + 90 * 86_400) * 1000 },
    );
    assert.equal(classifyCredential(makeJwt({ aud: ['kimi.ai'], typ: 'refresh' })).dialect, 'current');
    assert.equal(classifyCredential(makeJwt({ aud: 'www.kimi.com', typ: 'refresh' })).dialect, 'current');
  });

  test('a user-center access JWT is current; 900 s is short-lived, 30 days is not (§9 D2)', () => {
    const cookie = classifyCredential(makeJwt({ iss: 'user-center', typ: 'access', iat, exp: iat + 900 }));
    assert.equal(cookie.kind, 'access');
    assert.equal(cookie.dialect, 'current');
    assert.equal(cookie.isShortLived, true);
    const longCookie = classifyCredential(makeJwt({ iss: 'user-center', typ: 'access', iat, exp: iat + 30 * 86_400 }));
    assert.equal(longCookie.isShortLived, false);
    const noIat = classifyCredential(makeJwt({ iss: 'user-center', typ: 'access', exp: iat + 600 }), { now: iat * 1000 });
    assert.equal(noIat.isShortLived, true);
  });

  test('a user-center refresh JWT is legacy first with the current dialect as fallback', () => {
    const result = classifyCredential(makeJwt({ iss: 'user-center', typ: 'refresh', iat, exp: iat + 86_400 }));
    assert.equal(result.kind, 'refresh');
    assert.equal(result.dialect, 'legacy');
    assert.equal(result.fallbackDialect, 'current');
    assert.equal(result.isShortLived, false);
  });

  test('anything that is not a JWT is a legacy refresh token', () => {
    const result = classifyCredential('  opaque-legacy-token_123  ');
    assert.deepEqual(result, { token: 'opaque-legacy-token_123', kind: 'refresh', dialect: 'legacy', isShortLived: false });
  });

  test('a prefix overrides the guess and KIMI_DIALECT; KIMI_DIALECT overrides auto', () => {
    const jwt = makeJwt({ iss: 'user-center', typ: 'refresh' });
    const prefixed = classifyCredential(`current:${jwt}`, { dialectMode: 'legacy' });
    assert.equal(prefixed.dialect, 'current');
    assert.equal(prefixed.token, jwt);
    assert.equal(prefixed.fallbackDialect, undefined, 'a forced dialect has no fallback');
    assert.equal(classifyCredential(`LEGACY:${makeJwt({ iss: 'account' })}`).dialect, 'legacy');
    assert.equal(classifyCredential('opaque', { dialectMode: 'current' }).dialect, 'current');
  });

  test('malformed input is refused with a clear message that never echoes the token', () => {
    const cases = ['', '   ', 'abc def-secret', 'abc\u0000secret', 'abc\nsecret', 'tökensecret', 'x'.repeat(9_000)];
    for (const input of cases) {
      assert.throws(
        () => classifyCredential(input, { label: 'Kimi token 2' }),
        (error: unknown) => {
          assert.ok(error instanceof AuthenticationError);
          assert.equal(error.code, 'invalid_token');
          assert.match(error.message, /^Kimi token 2 /);
          assert.doesNotMatch(error.message, /secret/);
          return true;
        },
      );
    }
  });
});

describe('classifyCredential: quotes and the kimi-auth cookie are unwrapped as add-account does (§3.4)', () => {
  const refresh = makeJwt({ iss: 'account', typ: 'refresh', iat, exp: iat + 90 * 86_400 });
  const access = makeJwt({ iss: 'account', typ: 'access', iat, exp: iat + 900 });

  test('quoted, Bearer-prefixed, cookie-wrapped and percent-encoded forms give the bare token and the same account', () => {
    const forms = [
      `"${refresh}"`,
      `'${refresh}'`,
      ` "${refresh}" `,
      `Bearer ${refresh}`,
      `${refresh};`,
      `kimi-auth=${refresh}`,
      `kimi-auth=${refresh}; Path=/; HttpOnly`,
      `"kimi-auth=${refresh}"`,
      `kimi-auth="${refresh}"`,
      `theme=dark; kimi-auth=${encodeURIComponent(refresh)}`,
    ];
    for (const form of forms) {
      const result = classifyCredential(form);
      assert.equal(result.token, refresh, form.replace(refresh, '<token>'));
      assert.equal(accountIdFor(result.token), accountIdFor(refresh));
      assert.equal(result.dialect, 'current');
    }
    assert.equal(classifyCredential(`kimi-auth=${access}`).kind, 'access');
  });

  test('a dialect prefix works inside or outside the quotes and the cookie', () => {
    for (const form of [`legacy:"${refresh}"`, `"legacy:${refresh}"`, `legacy:kimi-auth=${refresh}`]) {
      const result = classifyCredential(form);
      assert.deepEqual([result.token, result.dialect], [refresh, 'legacy'], form.replace(refresh, '<token>'));
    }
  });

  test('what is still no token after unwrapping gets a 401 naming the problem, never the token', () => {
    const cases: Array<[string, RegExp]> = [
      ['theme=dark-secret', /looks like a cookie or a name=value pair/],
      ['session=abc-secret; Path=/', /looks like a cookie or a name=value pair/],
      ['kimi-auth=; other=secret', /looks like a cookie or a name=value pair/],
      ['abc"secret', /contains quote characters/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => classifyCredential(input, { label: 'Bearer token 1' }),
        (error: unknown) => {
          assert.ok(error instanceof AuthenticationError);
          assert.equal(error.status, 401);
          assert.equal(error.code, 'invalid_token');
          assert.match(error.message, /^Bearer token 1 /);
          assert.match(error.message, message);
          assert.doesNotMatch(error.message, /secret/);
          return true;
        },
      );
    }
    // Base64 padding at the end is part of an opaque token, not a name=value pair.
    assert.equal(classifyCredential('b3BhcXVlLXRva2Vu==').token, 'b3BhcXVlLXRva2Vu==');
  });
});

describe('accountIdFor', () => {
  test('is a stable 12-character base64url hash, different per token, not the token', () => {
    const id = accountIdFor('token-a');
    assert.match(id, /^[A-Za-z0-9_-]{12}$/);
    assert.equal(accountIdFor('token-a'), id);
    assert.notEqual(accountIdFor('token-b'), id);
    assert.ok(!id.includes('token'));
  });
});
