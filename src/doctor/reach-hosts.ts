/**
 * @module doctor/reach-hosts
 * The doctor's first steps for each Kimi host (protocol spec §3.1, §2.1): the name resolves, a TCP (or TLS)
 * connection opens, and the host's HTTP `Date` agrees with the local clock — token expiry and the proactive
 * refresh window (§3.4: 60–180 s) depend on it.
 */
import { lookup } from 'node:dns/promises';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { readBodyText, type UpstreamHttp } from '../upstream/upstream-http.ts';
import type { DoctorRow } from './doctor-types.ts';

/** Clock skew beyond which token expiry checks go wrong (below the 60 s of §3.4's proactive refresh). */
export const maxClockSkewMs = 60_000;
const connectTimeoutMs = 10_000;

export interface ReachOptions {
  http: UpstreamHttp;
  clock: () => number;
  signal: AbortSignal;
  /** Called before each step so the wire tap labels its exchanges. */
  onStep: (step: DoctorRow['step'], target: string) => void;
}

export async function reachHost(origin: string, options: ReachOptions): Promise<DoctorRow[]> {
  const url = new URL(origin);
  const target = url.host;
  const rows: DoctorRow[] = [];
  const dns = await timed('dns', target, async () => {
    const addresses = await lookup(url.hostname, { all: true });
    return { detail: `resolves to ${addresses.slice(0, 3).map((entry) => entry.address).join(', ')}${addresses.length > 3 ? ', …' : ''}` };
  });
  rows.push(dns);
  if (dns.result !== 'ok') return [...rows, skipped('connect', target, 'dns'), skipped('clock', target, 'dns')];
  const connection = await timed('connect', target, () => openConnection(url));
  rows.push(connection);
  if (connection.result !== 'ok') return [...rows, skipped('clock', target, 'connect')];
  options.onStep('clock', target);
  rows.push(await timed('clock', target, () => checkClock(url, options)));
  return rows;
}

async function openConnection(url: URL): Promise<{ detail: string }> {
  const isTls = url.protocol === 'https:';
  const port = Number(url.port || (isTls ? 443 : 80));
  const socket: Socket | TLSSocket = isTls
    ? connectTls({ host: url.hostname, port, servername: isIpLiteral(url.hostname) ? undefined : url.hostname, ALPNProtocols: ['http/1.1'] })
    : connectTcp({ host: url.hostname, port });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      socket.once(isTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    if (!isTls) return { detail: `TCP to port ${port} (plain HTTP)` };
    const tls = socket as TLSSocket;
    const certificate = tls.getPeerCertificate();
    const validTo = certificate?.valid_to ? `, certificate valid until ${new Date(certificate.valid_to).toISOString().slice(0, 10)}` : '';
    return { detail: `${tls.getProtocol() ?? 'TLS'} to port ${port}${validTo}` };
  } finally {
    socket.destroy();
  }
}

async function checkClock(url: URL, options: ReachOptions): Promise<{ detail: string; isFailure?: boolean; section?: string; expected?: string; observed?: string }> {
  const before = options.clock();
  const response = await options.http.send({ url: `${url.origin}/`, method: 'HEAD', signal: options.signal });
  const after = options.clock();
  await readBodyText(response.body, 1024);
  const raw = response.headers.date;
  const date = Date.parse(Array.isArray(raw) ? raw[0] : (raw ?? ''));
  if (Number.isNaN(date)) return { detail: `HTTP ${response.statusCode} without a Date header; clock not compared` };
  // Date has one-second resolution: compare against the middle of the request.
  const skewMs = date + 500 - (before + after) / 2;
  const skew = `${skewMs >= 0 ? '+' : '-'}${(Math.abs(skewMs) / 1000).toFixed(1)} s`;
  if (Math.abs(skewMs) <= maxClockSkewMs) return { detail: `host clock ${skew} from ours` };
  return {
    detail: `§3.4: local clock is off by ${skew}; token expiry and refresh timing will be wrong. Fix the system clock (NTP).`,
    isFailure: true,
    section: '§3.4',
    expected: `clock within ±${maxClockSkewMs / 1000} s of the host's Date header`,
    observed: `${skew}`,
  };
}

type StepOutcome = { detail: string; isFailure?: boolean; section?: string; expected?: string; observed?: string };

async function timed(step: DoctorRow['step'], target: string, run: () => Promise<StepOutcome>): Promise<DoctorRow> {
  const started = performance.now();
  try {
    const outcome = await run();
    const row: DoctorRow = { step, target, result: outcome.isFailure ? 'FAIL' : 'ok', ms: elapsed(started), detail: outcome.detail };
    if (outcome.section) Object.assign(row, { section: outcome.section, expected: outcome.expected, observed: outcome.observed });
    return row;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    return { step, target, result: 'FAIL', ms: elapsed(started), detail: `${step === 'dns' ? 'name does not resolve' : step === 'connect' ? 'cannot connect' : 'no HTTP answer'}: ${code ?? message}`, observed: code ?? message };
  }
}

export function skipped(step: DoctorRow['step'], target: string, because: string): DoctorRow {
  return { step, target, result: 'skip', ms: 0, detail: `not run: ${because} failed` };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

function isIpLiteral(hostname: string): boolean {
  return /^[\d.]+$/.test(hostname) || hostname.includes(':') || hostname.startsWith('[');
}
