/**
 * @module files/ssrf-agent
 * The SSRF guard for user-supplied attachment URLs: an undici Agent whose connector resolves the
 * host itself, refuses unless every answer is public unicast, and then connects to the checked
 * address (keeping the host name for TLS SNI), so DNS rebinding between check and connect cannot
 * happen. Also the scheme and port allow-lists, applied to every URL and every redirect hop.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { AttachmentError } from '../errors.ts';
import { checkAddress } from './ip-policy.ts';

export interface LookupAnswer {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has; injectable so tests can play DNS. */
export type HostLookup = (hostname: string) => Promise<LookupAnswer[]>;

export interface GuardOptions {
  /** `ALLOW_PRIVATE_ATTACHMENT_URLS=1`: skip the address checks (schemes and ports still apply). */
  allowPrivate: boolean;
  connectTimeoutMs: number;
  /** Ports a URL may name; undefined allows any port. */
  allowedPorts?: readonly number[];
  /** Operator exceptions: CIDRs allowed even though they are not public (e.g. one internal file server). */
  allowedCidrs?: readonly string[];
  /** DNS resolution; defaults to the system resolver (`dns.lookup` with `all: true`). */
  lookup?: HostLookup;
}

export const allowedSchemes: ReadonlySet<string> = new Set(['http:', 'https:']);

const defaultLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true, order: 'verbatim' });

/** An undici Agent that only connects to addresses its policy allows, plus a pre-flight URL check. */
export class GuardedAgent extends Agent {
  readonly guardOptions: Readonly<GuardOptions>;

  constructor(options: GuardOptions) {
    const base = buildConnector({ timeout: options.connectTimeoutMs });
    super({ connect: guardedConnector(options, base) });
    this.guardOptions = Object.freeze({ ...options });
  }

  /**
   * Cheap check before any I/O: scheme, port and IP-literal host. Host names are checked again
   * (after resolution) by the connector; this only makes refusals of literals fail fast.
   */
  checkUrl(url: URL): void {
    checkUrlShape(url, this.guardOptions);
    if (this.guardOptions.allowPrivate) return;
    const literal = hostLiteral(url.hostname);
    if (literal !== undefined) assertAddressAllowed(url.hostname, literal, this.guardOptions);
  }
}

export function createGuardedAgent(options: GuardOptions): GuardedAgent {
  return new GuardedAgent(options);
}

/** Scheme and port allow-lists; credentials in URLs are refused so they never reach a log or a server. */
export function checkUrlShape(url: URL, options: Pick<GuardOptions, 'allowedPorts'>): void {
  if (!allowedSchemes.has(url.protocol)) {
    throw forbidden(`Attachment URL scheme ${url.protocol} is not allowed; use http or https.`);
  }
  if (url.username !== '' || url.password !== '') {
    throw forbidden('Attachment URLs must not carry credentials.');
  }
  const port = effectivePort(url.protocol, url.port);
  if (options.allowedPorts !== undefined && !options.allowedPorts.includes(port)) {
    throw forbidden(`Attachment URL port ${port} is not allowed.`);
  }
}

/**
 * Resolves the host (or takes its literal) and returns the one address to connect to. Refuses when
 * any answer is not allowed, because a resolver may hand out a different answer on the next query.
 */
export async function resolveCheckedAddress(hostname: string, options: GuardOptions): Promise<string> {
  const literal = hostLiteral(hostname);
  if (literal !== undefined) {
    if (!options.allowPrivate) assertAddressAllowed(hostname, literal, options);
    return literal;
  }
  let answers: LookupAnswer[];
  try {
    answers = await (options.lookup ?? defaultLookup)(hostname);
  } catch (error) {
    throw new AttachmentError('attachment_unreachable', `Could not resolve the attachment host ${hostname}.`, {
      cause: error,
    });
  }
  if (answers.length === 0) {
    throw new AttachmentError('attachment_unreachable', `The attachment host ${hostname} has no address.`);
  }
  if (!options.allowPrivate) {
    for (const answer of answers) assertAddressAllowed(hostname, answer.address, options);
  }
  return answers[0].address;
}

function guardedConnector(options: GuardOptions, base: buildConnector.connector): buildConnector.connector {
  return (connectOptions, callback) => {
    const { hostname, protocol, port } = connectOptions;
    const allowedPorts = options.allowedPorts;
    if (allowedPorts !== undefined && !allowedPorts.includes(effectivePort(protocol, port))) {
      callback(forbidden(`Attachment URL port ${effectivePort(protocol, port)} is not allowed.`), null);
      return;
    }
    resolveCheckedAddress(hostname, options).then(
      (address) => {
        // The original name stays the TLS server name, so certificates are still verified for it.
        const servername = connectOptions.servername || (isIP(hostname) === 0 ? hostname : undefined);
        base({ ...connectOptions, hostname: address, servername }, callback);
      },
      (error: Error) => callback(error, null),
    );
  };
}

function assertAddressAllowed(hostname: string, address: string, options: GuardOptions): void {
  const verdict = checkAddress(address, options.allowedCidrs);
  if (!verdict.isAllowed) {
    throw forbidden(`Attachment URL host ${hostname} is not allowed: it is or resolves to a ${verdict.rule}.`);
  }
}

/** The bare IP when the host is an IP literal (URL parsing already normalised decimal/hex/octal IPv4). */
function hostLiteral(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) === 0 ? undefined : bare;
}

function effectivePort(protocol: string, port: string): number {
  if (port !== '') return Number(port);
  return protocol === 'https:' ? 443 : 80;
}

function forbidden(message: string): AttachmentError {
  return new AttachmentError('attachment_url_forbidden', message);
}
