/**
 * @module bench/b2-latency
 * B2: added latency at concurrency 1 (target minus direct), one request per target in turn so every target
 * sees the same machine state. Target: gateway's added p50 ≤ 1.5× the pass-through proxy's added p50.
 * Each round runs on fresh processes (run.ts); the verdict is the median of the rounds' ratios, because this
 * ratio moves between runs far more than within one (a new process lays out its memory differently).
 */
import { createClientPool, exchange, type Target } from './lib/clients.ts';
import type { ServerProcess } from './lib/processes.ts';
import type { Section } from './lib/report.ts';
import { SHORT_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, formatRatio, median, percentile } from './lib/stats.ts';

/** One round: each target's latencies (ms) and, for the proxies and the gateway, their CPU per request. */
export interface LatencyRound {
  latenciesMs: Map<string, number[]>;
  cpuMicrosPerRequest: Map<string, number>;
}

/**
 * `servers` maps a target name to its process, whose CPU time (process.cpuUsage: every thread, user and system)
 * over the round is divided by the requests it served. Direct has none: the simulator serves every target.
 */
export async function measureLatency(targets: Target[], servers: ReadonlyMap<string, ServerProcess>, settings: BenchSettings): Promise<LatencyRound> {
  const pools = new Map(targets.map((target) => [target.name, createClientPool(target, 1)]));
  const latenciesMs = new Map<string, number[]>(targets.map((target) => [target.name, []]));
  const cpuBefore = new Map<string, number>();
  const cpuMicrosPerRequest = new Map<string, number>();
  try {
    const warmup = Math.ceil(settings.latency.requests / 10);
    const total = warmup + settings.latency.requests;
    for (let index = 0; index < total; index += 1) {
      if (index === warmup) for (const [name, server] of servers) cpuBefore.set(name, (await server.stats()).cpuMicros);
      for (const target of targets) {
        const result = await exchange(pools.get(target.name)!, target, { prompt: SHORT_PROMPT, stream: false });
        if (result.status !== 200) throw new Error(`B2: ${target.name} answered HTTP ${result.status}`);
        if (index >= warmup) latenciesMs.get(target.name)!.push(result.endAt - result.startedAt);
      }
    }
    for (const [name, server] of servers) {
      cpuMicrosPerRequest.set(name, ((await server.stats()).cpuMicros - cpuBefore.get(name)!) / settings.latency.requests);
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  return { latenciesMs, cpuMicrosPerRequest };
}

export function latencySection(targets: Target[], rounds: LatencyRound[], settings: BenchSettings): Section {
  const p = (round: LatencyRound, name: string, q: number) => percentile(round.latenciesMs.get(name)!, q);
  const added = (round: LatencyRound, name: string, q: number) => p(round, name, q) - p(round, 'direct', q);
  const acrossRounds = (value: (round: LatencyRound) => number) => rounds.map(value);
  const ratios = acrossRounds((round) => added(round, 'gateway', 50) / added(round, 'pass-through', 50));
  const range = (values: number[], format: (value: number) => string) =>
    values.length > 1 ? `${format(Math.min(...values))}–${format(Math.max(...values))}` : format(values[0]);
  const rows = targets.map((target) => {
    const name = target.name;
    const isDirect = name === 'direct';
    const addedP50 = acrossRounds((round) => added(round, name, 50));
    const cpu = acrossRounds((round) => round.cpuMicrosPerRequest.get(name) ?? Number.NaN);
    return [
      name,
      formatNumber(median(acrossRounds((round) => p(round, name, 50)))),
      formatNumber(median(acrossRounds((round) => p(round, name, 99)))),
      isDirect ? '—' : formatNumber(median(addedP50)),
      isDirect ? '—' : range(addedP50, (value) => formatNumber(value)),
      isDirect ? '—' : formatNumber(median(acrossRounds((round) => added(round, name, 99)))),
      isDirect ? '—' : formatRatio(median(acrossRounds((round) => added(round, name, 50) / added(round, 'pass-through', 50)))),
      isDirect ? '—' : formatNumber(median(cpu), 0),
    ];
  });
  const ratio = median(ratios);
  const gatewayAdded = median(acrossRounds((round) => added(round, 'gateway', 50)));
  const referenceAdded = median(acrossRounds((round) => added(round, 'pass-through', 50)));
  return {
    id: 'B2',
    title: `latency at concurrency 1 (${rounds.length} round${rounds.length === 1 ? '' : 's'} on fresh processes, ${settings.latency.requests} requests per target each, interleaved)`,
    header: ['target', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p50, range of rounds', 'added p99 ms', 'added ÷ pass-through added', 'CPU µs/request'],
    rows,
    checks: [
      {
        id: 'B2',
        metric: 'gateway added p50 ÷ pass-through added p50',
        measured: `${formatRatio(ratio)} (${formatNumber(gatewayAdded)} vs ${formatNumber(referenceAdded)} ms${rounds.length > 1 ? `; rounds ${ratios.map(formatRatio).join(', ')}` : ''})`,
        target: '≤ 1.5×',
        ok: ratio <= 1.5,
      },
    ],
    notes: [
      'added = the target\'s percentile minus direct\'s percentile in the same round; the request is the same small completion as B1.',
      'every figure is the median of the rounds\' figures; the verdict is the median of the rounds\' ratios.',
      'CPU µs/request: the process\'s CPU time (all threads, user + system, so also GC and socket work in the kernel) over the round, divided by the requests it served.',
    ],
  };
}
