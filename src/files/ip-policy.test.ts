// Pins the address policy behind the SSRF guard (issue 4: "private, loopback, link-local, multicast
// and metadata addresses refused in every spelling").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAddress } from './ip-policy.ts';

const refused: Array<[string, RegExp]> = [
  ['127.0.0.1', /loopback/],
  ['127.255.0.9', /loopback/],
  ['0.0.0.0', /unspecified/],
  ['10.0.0.1', /private/],
  ['172.16.0.1', /private/],
  ['172.31.255.254', /private/],
  ['192.168.1.1', /private/],
  ['100.64.0.1', /carrier-grade/],
  ['169.254.169.254', /link-local/],
  ['224.0.0.1', /multicast/],
  ['255.255.255.255', /broadcast/],
  ['198.18.0.1', /reserved/],
  ['192.0.2.1', /reserved/],
  ['240.0.0.1', /reserved/],
  ['::1', /loopback/],
  ['::', /unspecified/],
  ['fe80::1', /link-local/],
  ['fc00::1', /unique-local/],
  ['fd12:3456::1', /unique-local/],
  ['fec0::1', /site-local/],
  ['ff02::1', /multicast/],
  ['::ffff:127.0.0.1', /loopback/],
  ['::ffff:7f00:1', /loopback/],
  ['::ffff:169.254.169.254', /link-local/],
  ['::ffff:10.1.2.3', /private/],
  ['64:ff9b::7f00:1', /embedding a loopback/],
  ['64:ff9b::a9fe:a9fe', /embedding a link-local/],
  ['64:ff9b:1::1', /local-use NAT64/],
  ['2002:7f00:1::1', /embedding a loopback/],
  ['2002:c0a8:101::1', /embedding a private/],
  ['::7f00:1', /IPv4-compatible/],
  ['2001:db8::1', /reserved|documentation/],
  ['2001::1', /Teredo/],
  ['4000::1', /outside global unicast/],
  ['[::1]', /loopback/],
  ['fe80::1%eth0', /link-local/],
  ['0177.0.0.1', /not an IP/],
  ['2130706433', /not an IP/],
  ['localhost', /not an IP/],
];

for (const [address, rule] of refused) {
  test(`address ${address} is refused and the rule is named (issue 4 SSRF)`, () => {
    const verdict = checkAddress(address);
    assert.equal(verdict.isAllowed, false);
    assert.match(verdict.isAllowed ? '' : verdict.rule, rule);
  });
}

test('public unicast addresses are allowed, including NAT64 and 6to4 with a public embedded IPv4', () => {
  for (const address of ['93.184.216.34', '8.8.8.8', '1.1.1.1', '2606:4700::1111', '64:ff9b::808:808', '2002:808:808::1', '::ffff:8.8.8.8']) {
    assert.deepEqual(checkAddress(address), { isAllowed: true }, address);
  }
});

test('operator CIDR exceptions allow exactly their range, also through an IPv4-mapped spelling', () => {
  assert.deepEqual(checkAddress('127.0.0.2', ['127.0.0.2/32']), { isAllowed: true });
  assert.deepEqual(checkAddress('::ffff:127.0.0.2', ['127.0.0.2/32']), { isAllowed: true });
  assert.equal(checkAddress('127.0.0.1', ['127.0.0.2/32']).isAllowed, false);
  assert.deepEqual(checkAddress('fd00::5', ['fd00::/64']), { isAllowed: true });
  assert.equal(checkAddress('10.0.0.1', ['not a cidr']).isAllowed, false);
});
