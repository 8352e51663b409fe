/**
 * @module test/support/gateway-instance
 * One more gateway process-equivalent on an existing simulator, configured only through settings (for replicas
 * that share Redis, or a restart on the same STATE_FILE, which startStack cannot do because it owns its state
 * folder), plus small helpers the end-to-end account tests share: a simulator clock that can jump ahead, a direct
 * refresh call to tell a live refresh token from a dead one, and the Chat calls one account received.
 */
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import type { RecordedRequest, Simulator } from '../../simulator/simulator.ts';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/main.ts';

export const CHAT_PATH = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
const REFRESH_RPC_PATH = '/api/account.gateway.v1.AuthService/RefreshToken';

export interface GatewayInstance {
  url: string;
  gateway: Gateway;
  /** Everything this gateway logged so far (JSON lines). */
  logs(): string;
  close(): Promise<void>;
}

/** A gateway pointed at the simulator; `env` must name STATE_FILE (or REDIS_URL) and the accounts. */
export async function startGatewayInstance(simulator: Simulator, env: Record<string, string>): Promise<GatewayInstance> {
  const config = loadConfig({
    env: {
      PORT: '0',
      HOST: '127.0.0.1',
      KIMI_BASE_URL: simulator.url,
      KIMI_AUTH_URL: simulator.url,
      KIMI_LEGACY_BASE_URL: simulator.url,
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const logStream = new PassThrough();
  const chunks: string[] = [];
  logStream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const gateway = await startGateway(config, { logDestination: logStream });
  return { url: gateway.url, gateway, logs: () => chunks.join(''), close: () => gateway.close(200) };
}

/** A clock for `startSimulator({ clock })` that tests can move forward (token expiry without waiting). */
export function jumpableClock(): { now: () => number; advance(ms: number): void } {
  let offsetMs = 0;
  return {
    now: () => Date.now() + offsetMs,
    advance(ms) {
      offsetMs += ms;
    },
  };
}

/** Calls the account service's RefreshToken directly: 200 means the refresh token is alive (it is then rotated). */
export async function refreshDirectly(simulatorUrl: string, refreshToken: string): Promise<{ status: number; refreshToken?: string }> {
  const response = await request(`${simulatorUrl}${REFRESH_RPC_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  const body = (await response.body.json().catch(() => undefined)) as { refreshToken?: string } | undefined;
  return { status: response.statusCode, refreshToken: body?.refreshToken };
}

/** Chat calls (Connect ChatService/Chat) the simulator recorded for one account. */
export function chatCallsOf(simulator: Simulator, userId: string): RecordedRequest[] {
  return simulator.requests.filter((recorded) => recorded.path === CHAT_PATH && recorded.userId === userId);
}

/** Runs `task` while sampling `sample()` every few ms; returns the task's result and the largest sample seen. */
export async function withMaxSample<T>(sample: () => number, task: () => Promise<T>): Promise<{ result: T; max: number }> {
  let max = sample();
  const timer = setInterval(() => {
    max = Math.max(max, sample());
  }, 2);
  try {
    const result = await task();
    return { result, max: Math.max(max, sample()) };
  } finally {
    clearInterval(timer);
  }
}
