/**
 * @module bench/lib/child-stats
 * The child side of the benchmark's process protocol: every measured server (gateway, reference proxies,
 * simulator) runs in its own process so CPU and memory are attributable, and answers IPC requests for its
 * CPU time, memory and event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ChildStats {
  /** process.cpuUsage() user + system, in microseconds since the process started. */
  cpuMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** Peak RSS since the process started (process.resourceUsage().maxRSS). */
  maxRssBytes: number;
  /** Event-loop delay since the last reset, in milliseconds. */
  eventLoopDelay: { p50: number; p99: number; max: number; samples: number };
  /** Open handles the server reports (e.g. open HTTP connections), when it can. */
  openConnections?: number;
}

export type ParentMessage = { id: number; type: 'stats' | 'reset-event-loop' | 'gc' | 'profile-start' } | { id: number; type: 'profile-stop'; path: string };
export type ChildMessage =
  | { type: 'ready'; url: string; extra?: unknown }
  | { type: 'reply'; id: number; stats?: ChildStats }
  | { type: 'failed'; message: string };

/** Installs the IPC handler and sends `ready`. Call once the child's server is listening. */
export function serveChildStats(url: string, extra?: unknown, openConnections?: () => number): void {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const profiler = new Session();
  process.on('message', async (message: ParentMessage) => {
    if (message.type === 'reset-event-loop') histogram.reset();
    if (message.type === 'gc') collectGarbage();
    if (message.type === 'profile-start') await startProfile(profiler);
    if (message.type === 'profile-stop') await stopProfile(profiler, message.path);
    const reply: ChildMessage = { type: 'reply', id: message.id, stats: message.type === 'stats' ? snapshot(histogram, openConnections) : undefined };
    process.send?.(reply);
  });
  // The parent going away (bench interrupted) ends the child too.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url, extra } satisfies ChildMessage);
}

export function reportChildFailure(error: unknown): never {
  process.send?.({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies ChildMessage);
  process.exit(1);
}

/** A steady-state CPU profile (bench --profile): started after warm-up, so start-up does not drown it. */
async function startProfile(session: Session): Promise<void> {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 1000) });
  await session.post('Profiler.start');
}

async function stopProfile(session: Session, path: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(path, JSON.stringify(profile));
  session.disconnect();
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass may only schedule finalisers that free more.
  gc?.();
  gc?.();
}

function snapshot(histogram: ReturnType<typeof monitorEventLoopDelay>, openConnections?: () => number): ChildStats {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  const toMs = (nanoseconds: number) => nanoseconds / 1e6;
  return {
    cpuMicros: cpu.user + cpu.system,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    eventLoopDelay: {
      p50: histogram.count > 0 ? toMs(histogram.percentile(50)) : 0,
      p99: histogram.count > 0 ? toMs(histogram.percentile(99)) : 0,
      max: histogram.count > 0 ? toMs(histogram.max) : 0,
      samples: histogram.count,
    },
    openConnections: openConnections?.(),
  };
}
