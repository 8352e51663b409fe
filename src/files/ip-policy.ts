/**
 * @module files/ip-policy
 * Pure address policy for attachment fetches: decides whether one IP address is public unicast,
 * and names the rule that refused it. No I/O, so every hostile spelling can be tested directly.
 */
import ipaddr from 'ipaddr.js';

export type AddressVerdict = { isAllowed: true } | { isAllowed: false; rule: string };

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;

/** Named so that a refusal message can say which rule applied without leaking anything else. */
const ipv4RuleNames: Record<string, string> = {
  unspecified: 'unspecified address (0.0.0.0/8)',
  broadcast: 'broadcast address',
  multicast: 'multicast address',
  linkLocal: 'link-local address (includes cloud metadata 169.254.169.254)',
  loopback: 'loopback address',
  carrierGradeNat: 'carrier-grade NAT address (100.64.0.0/10)',
  private: 'private address (RFC 1918)',
  reserved: 'reserved or documentation address',
  as112: 'AS112 address',
  amt: 'AMT relay address',
};

const ipv6RuleNames: Record<string, string> = {
  unspecified: 'unspecified address (::)',
  linkLocal: 'link-local address (fe80::/10)',
  multicast: 'multicast address (ff00::/8)',
  loopback: 'loopback address (::1)',
  uniqueLocal: 'unique-local address (fc00::/7)',
  deprecatedSiteLocal: 'site-local address (fec0::/10)',
  discard: 'discard-only address (100::/64)',
  rfc6145: 'IPv4-translated address',
  teredo: 'Teredo tunnel address',
  benchmarking: 'benchmarking address',
  amt: 'AMT relay address',
  as112v6: 'AS112 address',
  deprecatedOrchid: 'ORCHID address',
  orchid2: 'ORCHID address',
  droneRemoteIdProtocolEntityTags: 'reserved address',
  segmentRouting: 'segment-routing address',
  reserved: 'reserved or documentation address',
};

/** Parses an address as the socket layer would see it; brackets around IPv6 are tolerated. */
export function parseAddress(address: string): Parsed | undefined {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  // isValidFourPartDecimal refuses the inet_aton spellings (0x7f.1, 0177.0.0.1) that ipaddr.parse accepts.
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  if (ipaddr.IPv6.isValid(bare)) return ipaddr.IPv6.parse(bare.replace(/%.*$/, ''));
  return undefined;
}

/**
 * Public unicast only. IPv4-mapped IPv6 is un-mapped first; NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * are judged by the IPv4 address they embed; any other special range is refused by name.
 */
export function checkAddress(address: string, allowedCidrs: readonly string[] = []): AddressVerdict {
  const parsed = parseAddress(address);
  if (parsed === undefined) return { isAllowed: false, rule: 'not an IP address' };
  const unmapped = parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress() ? parsed.toIPv4Address() : parsed;
  if (isInAllowList(unmapped, allowedCidrs)) return { isAllowed: true };
  return unmapped instanceof ipaddr.IPv4 ? checkIpv4(unmapped) : checkIpv6(unmapped);
}

function checkIpv4(address: ipaddr.IPv4): AddressVerdict {
  const range = address.range();
  if (range === 'unicast') return { isAllowed: true };
  return { isAllowed: false, rule: ipv4RuleNames[range] ?? `special-purpose address (${range})` };
}

function checkIpv6(address: ipaddr.IPv6): AddressVerdict {
  if (address.isIPv4MappedAddress()) return checkIpv4(address.toIPv4Address());
  const parts = address.parts;
  const embedded = embeddedIpv4(address);
  if (embedded !== undefined) {
    const inner = checkIpv4(embedded);
    return inner.isAllowed ? inner : { isAllowed: false, rule: `IPv6 address embedding a ${inner.rule}` };
  }
  const range = address.range();
  if (range === 'rfc6052') return { isAllowed: false, rule: 'local-use NAT64 address (64:ff9b:1::/48)' };
  if (range !== 'unicast') {
    return { isAllowed: false, rule: ipv6RuleNames[range] ?? `special-purpose address (${range})` };
  }
  // Deprecated IPv4-compatible addresses (::a.b.c.d) are 'unicast' to ipaddr.js but never global.
  if (parts.slice(0, 6).every((part) => part === 0)) {
    return { isAllowed: false, rule: 'IPv4-compatible address (::/96)' };
  }
  // Only 2000::/3 is allocated as global unicast; everything else is reserved by IANA.
  if ((parts[0] & 0xe000) !== 0x2000) return { isAllowed: false, rule: 'address outside global unicast (2000::/3)' };
  return { isAllowed: true };
}

/** The IPv4 address inside NAT64 well-known-prefix (64:ff9b::/96) and 6to4 (2002::/16) addresses. */
function embeddedIpv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const parts = address.parts;
  const isNat64 = parts[0] === 0x64 && parts[1] === 0xff9b && parts.slice(2, 6).every((part) => part === 0);
  if (isNat64) return ipv4FromWords(parts[6], parts[7]);
  if (parts[0] === 0x2002) return ipv4FromWords(parts[1], parts[2]);
  return undefined;
}

function ipv4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** Operator exceptions (CIDRs); a malformed entry is ignored here and should be refused by config. */
function isInAllowList(address: Parsed, allowedCidrs: readonly string[]): boolean {
  for (const cidr of allowedCidrs) {
    try {
      const [network, bits] = ipaddr.parseCIDR(cidr);
      if (address instanceof ipaddr.IPv4 && network instanceof ipaddr.IPv4 && address.match(network, bits)) return true;
      if (address instanceof ipaddr.IPv6 && network instanceof ipaddr.IPv6 && address.match(network, bits)) return true;
    } catch {
      continue;
    }
  }
  return false;
}
