/**
 * Test harness: a real simulator and a real gateway on loopback ports, wired by configuration only
 * (the same way a user points the gateway at Kimi). Closed by the caller in an after-hook.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startSimulator, type SimulatedAccount, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/main.ts';

export interface StackOptions {
  /** Extra gateway settings (environment names). */
  env?: Record<string, string>;
  /** Which token each account contributes: current refresh token (default), legacy refresh token, or access JWT. */
  tokenKind?: 'current' | 'legacy' | 'access';
  /** Number of simulated accounts (default 1). */
  accounts?: number;
  /** Put the tokens in the server pool (KIMI_TOKENS) instead of handing them to the test for Bearer use. */
  serverPool?: boolean;
  simulator?: SimulatorOptions;
  /** Reuse a running simulator (e.g. to restart a gateway against the same upstream). */
  existingSimulator?: Simulator;
}

export interface Stack {
  gatewayUrl: string;
  simulator: Simulator;
  accounts: SimulatedAccount[];
  /** Tokens for `Authorization: Bearer` (comma-joined). */
  token: string;
  tokens: string[];
  gateway: Gateway;
  /** Everything the gateway logged so far (JSON lines). */
  logs(): string;
  stateFile: string;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  // A small pause between frames, as on a real network, so that text reaches the gateway before a fault
  // (a reset arriving in the same TCP read would otherwise discard the frames before it).
  const simulator = options.existingSimulator ?? (await startSimulator({ port: 0, chunkDelayMs: 1, ...options.simulator }));
  const accounts = Array.from({ length: options.accounts ?? 1 }, () => simulator.issueAccount());
  const tokens = accounts.map((account) =>
    options.tokenKind === 'legacy' ? account.legacyRefreshToken : options.tokenKind === 'access' ? account.accessToken : account.refreshToken,
  );
  const folder = mkdtempSync(join(tmpdir(), 'kfa-stack-'));
  const stateFile = join(folder, 'state.json');
  const config = loadConfig({
    env: {
      PORT: '0',
      HOST: '127.0.0.1',
      KIMI_BASE_URL: simulator.url,
      KIMI_AUTH_URL: simulator.url,
      KIMI_LEGACY_BASE_URL: simulator.url,
      STATE_FILE: stateFile,
      LOG_LEVEL: 'info',
      ALLOW_PRIVATE_ATTACHMENT_URLS: '1',
      ...(options.serverPool ? { KIMI_TOKENS: tokens.join(',') } : {}),
      ...options.env,
    },
  });
  const logStream = new PassThrough();
  const logChunks: string[] = [];
  logStream.on('data', (chunk: Buffer) => logChunks.push(chunk.toString('utf8')));
  const gateway = await startGateway(config, { logDestination: logStream });
  return {
    gatewayUrl: gateway.url,
    simulator,
    accounts,
    token: tokens.join(','),
    tokens,
    gateway,
    stateFile,
    logs: () => logChunks.join(''),
    async close() {
      await gateway.close(200);
      if (!options.existingSimulator) await simulator.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
