/**
 * @module cli-demo
 * `demo` and `simulator` commands: the upstream simulator (a loopback Kimi written from the protocol
 * spec) alone, or with a gateway pointed at it, so a newcomer can curl a real answer without an account.
 */
import { startSimulator } from '../simulator/simulator.ts';
import type { Config } from './config.ts';

export async function runSimulatorCommand(port: number): Promise<void> {
  const simulator = await startSimulator({ port, host: '127.0.0.1' });
  const account = simulator.issueAccount();
  process.stdout.write(
    [
      `Kimi simulator listening on ${simulator.url} (both dialects; control API under /__simulator).`,
      `A refresh token for it (current dialect): ${account.refreshToken}`,
      `Point a gateway at it: KIMI_BASE_URL=${simulator.url} KIMI_AUTH_URL=${simulator.url} KIMI_LEGACY_BASE_URL=${simulator.url}`,
      '',
    ].join('\n'),
  );
  const stop = () => void simulator.close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export async function runDemoCommand(load: (extraEnv: NodeJS.ProcessEnv) => Config, version: string): Promise<void> {
  const simulator = await startSimulator({ port: 0, host: '127.0.0.1', chunkDelayMs: 30 });
  const account = simulator.issueAccount();
  const config = load({
    KIMI_BASE_URL: simulator.url,
    KIMI_AUTH_URL: simulator.url,
    KIMI_LEGACY_BASE_URL: simulator.url,
    KIMI_TOKENS: account.refreshToken,
    ALLOW_PRIVATE_ATTACHMENT_URLS: '1',
    STATE_FILE: process.env.STATE_FILE ?? './data/demo-state.json',
  });
  const { startGateway } = await import('./main.ts');
  const gateway = await startGateway(config, { handleSignals: true, version, onClose: () => simulator.close() });
  // The gateway's own URL: the address it listens on (HOST=::1 is not reachable as 127.0.0.1), loopback for a wildcard.
  const base = gateway.url;
  process.stdout.write(
    [
      '',
      `Demo: gateway on ${base}, Kimi simulator on ${simulator.url} (one simulated account in the server pool).`,
      'Try:',
      `  curl -s ${base}/v1/chat/completions -H 'Content-Type: application/json' -d '{"model":"kimi","messages":[{"role":"user","content":"Hello"}]}'`,
      `  curl -N ${base}/v1/chat/completions -H 'Content-Type: application/json' -d '{"model":"kimi-thinking","stream":true,"messages":[{"role":"user","content":"17*23?"}]}'`,
      `  curl -s ${base}/v1/chat/completions -H 'Content-Type: application/json' -d '{"model":"kimi-search","messages":[{"role":"user","content":"Weather in Beijing?"}]}'`,
      `Status page: ${base}/   Press Ctrl+C to stop.`,
      '',
    ].join('\n'),
  );
}
