/**
 * Test harness: a real simulator and a real gateway on loopback ports, wired by configuration only
 * (the same way a user points the gateway at Kimi). Closed by the caller in an after-hook.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type SimulatedAccount, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import type { Gateway } from '../../src/main.ts';
import { startGatewayInstance } from './gateway-instance.ts';

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
  const instance = await startGatewayInstance(simulator, {
    STATE_FILE: stateFile,
    ALLOW_PRIVATE_ATTACHMENT_URLS: '1',
    ...(options.serverPool ? { KIMI_TOKENS: tokens.join(',') } : {}),
    ...options.env,
  });
  const { gateway } = instance;
  return {
    gatewayUrl: gateway.url,
    simulator,
    accounts,
    token: tokens.join(','),
    tokens,
    gateway,
    stateFile,
    logs: instance.logs,
    async close() {
      await instance.close();
      if (!options.existingSimulator) await simulator.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
