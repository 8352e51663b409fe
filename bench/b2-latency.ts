/**
 * @module bench/b2-latency
 * B2: added latency at concurrency 1 (target minus direct), one request per target in turn so every target
 * sees the same machine state. Target: gateway's added p50 ≤ 1.5× the pass-through proxy's added p50.
 */
import { createClientPool, exchange, type Target } from './lib/clients.ts';
import type { Section } from './lib/report.ts';
import { SHORT_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, formatRatio, percentile } from './lib/stats.ts';

export async function runLatency(targets: Target[], settings: BenchSettings): Promise<Section> {
  const pools = new Map(targets.map((target) => [target.name, createClientPool(target, 1)]));
  const samples = new Map<string, number[]>(targets.map((target) => [target.name, []]));
  try {
    const warmup = Math.ceil(settings.latency.requests / 10);
    for (let index = 0; index < warmup + settings.latency.requests; index += 1) {
      for (const target of targets) {
        const result = await exchange(pools.get(target.name)!, target, { prompt: SHORT_PROMPT, stream: false });
        if (result.status !== 200) throw new Error(`B2: ${target.name} answered HTTP ${result.status}`);
        if (index >= warmup) samples.get(target.name)!.push(result.endAt - result.startedAt);
      }
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  const p = (name: string, q: number) => percentile(samples.get(name)!, q);
  const added = (name: string, q: number) => p(name, q) - p('direct', q);
  const reference = added('pass-through', 50);
  const rows = targets.map((target) => [
    target.name,
    formatNumber(p(target.name, 50)),
    formatNumber(p(target.name, 99)),
    target.name === 'direct' ? '—' : formatNumber(added(target.name, 50)),
    target.name === 'direct' ? '—' : formatNumber(added(target.name, 99)),
    target.name === 'direct' ? '—' : formatRatio(added(target.name, 50) / reference),
  ]);
  const ratio = added('gateway', 50) / reference;
  return {
    id: 'B2',
    title: `latency at concurrency 1 (${settings.latency.requests} requests per target, interleaved)`,
    header: ['target', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'added ÷ pass-through added'],
    rows,
    checks: [
      {
        id: 'B2',
        metric: 'gateway added p50 ÷ pass-through added p50',
        measured: `${formatRatio(ratio)} (${formatNumber(added('gateway', 50))} vs ${formatNumber(reference)} ms)`,
        target: '≤ 1.5×',
        ok: ratio <= 1.5,
      },
    ],
    notes: ['added = the target\'s percentile minus direct\'s percentile; the request is the same small completion as B1.'],
  };
}
