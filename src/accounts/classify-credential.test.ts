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

describe('accountIdFor', () => {
  test('is a stable 12-character base64url hash, different per token, not the token', () => {
    const id = accountIdFor('token-a');
    assert.match(id, /^[A-Za-z0-9_-]{12}$/);
    assert.equal(accountIdFor('token-a'), id);
    assert.notEqual(accountIdFor('token-b'), id);
    assert.ok(!id.includes('token'));
  });
});
