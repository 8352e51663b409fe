/**
 * @module bench/lib/bench-stack
 * Starts what one benchmark needs, each in its own process: the simulator (upstream), the gateway and the
 * two reference proxies, all on loopback, and describes them as targets for the clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatedAccount, SimulatorOptions } from '../../simulator/simulator.ts';
import type { Target } from './clients.ts';
import { spawnServer, type ServerProcess } from './processes.ts';

export type Member = 'gateway' | 'pass-through' | 're-encoding';

export interface BenchStackOptions {
  simulator?: SimulatorOptions;
  /** Simulated accounts (the gateway's pool holds all of them; direct clients use their access tokens). */
  accounts?: number;
  members: Member[];
  gatewayEnv?: Record<string, string>;
}

export interface BenchStack {
  simulator: ServerProcess;
  accounts: SimulatedAccount[];
  servers: Partial<Record<Member, ServerProcess>>;
  targets: { direct: Target } & Partial<Record<Member, Target>>;
  close(): Promise<void>;
}

/** Gateway settings for the benchmark: defaults except the pool sized for the load (chat deletion stays at its 600 s default, after the run). */
export function gatewayEnvFor(simulatorUrl: string, accounts: SimulatedAccount[], stateFile: string): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    KIMI_BASE_URL: simulatorUrl,
    KIMI_AUTH_URL: simulatorUrl,
    KIMI_LEGACY_BASE_URL: simulatorUrl,
    KIMI_DIALECT: 'current',
    KIMI_TOKENS: accounts.map((account) => account.refreshToken).join(','),
    STATE_FILE: stateFile,
    ACCOUNT_MAX_CONCURRENCY: '64',
    QUEUE_MAX: '10000',
    QUEUE_TIMEOUT_MS: '60000',
    ALLOW_PRIVATE_ATTACHMENT_URLS: '1',
    LOG_LEVEL: 'info',
  };
}

export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  const folder = mkdtempSync(join(tmpdir(), 'kfa-bench-'));
  const started: ServerProcess[] = [];
  try {
    const simulator = await spawnServer({
      name: 'simulator',
      script: 'simulator-process.ts',
      env: {
        // The gateway's pool, not the simulator, should be what limits concurrency in a benchmark.
        BENCH_SIMULATOR_OPTIONS: JSON.stringify({ maxConcurrentStreamsPerAccount: 100_000, ...options.simulator }),
        BENCH_ACCOUNTS: String(options.accounts ?? 1),
      },
    });
    started.push(simulator);
    const accounts = (simulator.extra as { accounts: SimulatedAccount[] }).accounts;
    const accessTokens = accounts.map((account) => account.accessToken);
    const servers: BenchStack['servers'] = {};
    const targets: BenchStack['targets'] = { direct: { name: 'direct', url: simulator.url, protocol: 'connect', accessTokens } };
    for (const member of options.members) {
      const server = await startMember(member, simulator.url, accounts, join(folder, 'state.json'), options.gatewayEnv);
      started.push(server);
      servers[member] = server;
      targets[member] = { name: member, url: server.url, protocol: member === 'pass-through' ? 'connect' : 'openai', accessTokens };
    }
    return {
      simulator,
      accounts,
      servers,
      targets,
      async close() {
        await Promise.all(started.map((server) => server.close()));
        rmSync(folder, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(started.map((server) => server.close()));
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
}

function startMember(member: Member, upstreamUrl: string, accounts: SimulatedAccount[], stateFile: string, gatewayEnv?: Record<string, string>): Promise<ServerProcess> {
  if (member === 'gateway') {
    return spawnServer({ name: 'gateway', script: 'gateway-process.ts', env: { ...gatewayEnvFor(upstreamUrl, accounts, stateFile), ...gatewayEnv } });
  }
  const env = { BENCH_UPSTREAM_URL: upstreamUrl, BENCH_ACCESS_TOKENS: accounts.map((account) => account.accessToken).join(',') };
  return spawnServer({ name: member, script: member === 'pass-through' ? 'pass-through-proxy.ts' : 'reencoding-proxy.ts', env });
}
