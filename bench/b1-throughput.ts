/**
 * @module bench/b1-throughput
 * B1: non-stream small completions, requests per second at 50 connections, rounds interleaved across the
 * targets so drift on a shared machine hits them alike. Target: gateway ≥ 0.75× the pass-through proxy.
 */
import { closedLoop, createClientPool, exchange, type LoadResult, type Target } from './lib/clients.ts';
import type { Section } from './lib/report.ts';
import { SHORT_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, formatRatio, median, percentile } from './lib/stats.ts';

export async function runThroughput(targets: Target[], settings: BenchSettings): Promise<Section> {
  const { connections, warmupMs, roundMs, rounds } = settings.throughput;
  const pools = new Map(targets.map((target) => [target.name, createClientPool(target, connections)]));
  const runOnce = (target: Target, durationMs: number) =>
    closedLoop(connections, durationMs, () => exchange(pools.get(target.name)!, target, { prompt: SHORT_PROMPT, stream: false }));
  const results = new Map<string, LoadResult[]>(targets.map((target) => [target.name, []]));
  try {
    for (const target of targets) await runOnce(target, warmupMs);
    for (let round = 0; round < rounds; round += 1) {
      for (const target of targets) results.get(target.name)!.push(await runOnce(target, roundMs));
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  const rate = (name: string) => median(results.get(name)?.map((result) => result.requestsPerSecond) ?? []);
  const reference = rate('pass-through');
  const rows = targets.map((target) => {
    const runs = results.get(target.name)!;
    const rates = runs.map((run) => run.requestsPerSecond);
    const latencies = runs.flatMap((run) => run.latenciesMs);
    const failed = runs.reduce((total, run) => total + run.failed, 0);
    return [
      target.name,
      formatNumber(rate(target.name), 0),
      `${formatNumber(Math.min(...rates), 0)}–${formatNumber(Math.max(...rates), 0)}`,
      formatNumber(percentile(latencies, 50)),
      formatNumber(percentile(latencies, 99)),
      formatRatio(rate(target.name) / reference),
      failed === 0 ? '0' : `${failed} (${runs.find((run) => run.firstFailure)?.firstFailure})`,
    ];
  });
  const ratio = rate('gateway') / reference;
  return {
    id: 'B1',
    title: `non-stream req/s at ${connections} connections (${rounds} interleaved rounds of ${roundMs / 1000} s)`,
    header: ['target', 'req/s median', 'req/s range', 'latency p50 ms', 'latency p99 ms', '÷ pass-through', 'failed'],
    rows,
    checks: [{ id: 'B1', metric: 'gateway req/s ÷ pass-through req/s', measured: formatRatio(ratio), target: '≥ 0.75×', ok: ratio >= 0.75 }],
    notes: ['direct and pass-through read the Connect stream to its end (the upstream has no non-stream call); gateway and re-encoding answer one chat.completion JSON.'],
  };
}
