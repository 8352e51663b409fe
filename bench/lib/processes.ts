/**
 * @module bench/lib/processes
 * The parent side of the benchmark's process protocol: forks a server script with IPC, waits for its URL,
 * and asks it for CPU, memory and event-loop statistics.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildStats, ParentMessage } from './child-stats.ts';

export interface ServerProcess {
  name: string;
  url: string;
  /** Whatever the child sent with `ready` (the simulator sends its accounts). */
  extra: unknown;
  pid: number;
  stats(): Promise<ChildStats>;
  resetEventLoop(): Promise<void>;
  /** Runs a full garbage collection in the child (children start with --expose-gc). */
  collectGarbage(): Promise<void>;
  /** Starts a V8 CPU profile in the child; `stopProfile` writes it as a .cpuprofile file. */
  startProfile(): Promise<void>;
  stopProfile(path: string): Promise<void>;
  close(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Script path relative to bench/. */
  script: string;
  env?: Record<string, string>;
  args?: string[];
  /** Forward the child's stderr (default true). */
  showErrors?: boolean;
  startTimeoutMs?: number;
}

const benchFolder = fileURLToPath(new URL('..', import.meta.url));

export async function spawnServer(options: SpawnOptions): Promise<ServerProcess> {
  const child = fork(`${benchFolder}${options.script}`, options.args ?? [], {
    env: { ...process.env, ...options.env },
    execArgv: ['--expose-gc', '--max-semi-space-size=16'],
    stdio: ['ignore', 'ignore', options.showErrors === false ? 'ignore' : 'inherit', 'ipc'],
  });
  const ready = await waitForReady(child, options);
  let nextId = 1;
  const pending = new Map<number, (message: Extract<ChildMessage, { type: 'reply' }>) => void>();
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'reply') pending.get(message.id)?.(message);
  });
  const ask = (type: ParentMessage['type'], path = '') =>
    new Promise<Extract<ChildMessage, { type: 'reply' }>>((resolve, reject) => {
      if (!child.connected) return reject(new Error(`${options.name} is not running`));
      const id = nextId++;
      pending.set(id, (message) => {
        pending.delete(id);
        resolve(message);
      });
      child.send((type === 'profile-stop' ? { id, type, path } : { id, type }) as ParentMessage);
    });
  return {
    name: options.name,
    url: ready.url,
    extra: ready.extra,
    pid: child.pid ?? 0,
    stats: async () => (await ask('stats')).stats as ChildStats,
    resetEventLoop: async () => void (await ask('reset-event-loop')),
    collectGarbage: async () => void (await ask('gc')),
    startProfile: async () => void (await ask('profile-start')),
    stopProfile: async (path) => void (await ask('profile-stop', path)),
    close: () => stopChild(child),
  };
}

function waitForReady(child: ChildProcess, options: SpawnOptions): Promise<Extract<ChildMessage, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.name} did not start within ${options.startTimeoutMs ?? 20_000} ms`));
    }, options.startTimeoutMs ?? 20_000);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message);
      } else if (message.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${options.name} failed to start: ${message.message}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited during start-up (code ${code})`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
