/**
 * @module bench/b3-first-byte
 * B3: streaming time to first byte and to first answer text, added over direct, at concurrency 1,
 * interleaved. Target: the gateway adds ≤ 1 ms at p50 (judged on the first answer text, the first byte that
 * means the same thing on both protocols). The no-buffering proof lives in b3-no-buffering.ts.
 */
import { createClientPool, exchange, type Exchange, type Target } from './lib/clients.ts';
import type { Section } from './lib/report.ts';
import { LONG_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, percentile } from './lib/stats.ts';

export async function runFirstByte(targets: Target[], settings: BenchSettings): Promise<Section> {
  const pools = new Map(targets.map((target) => [target.name, createClientPool(target, 1)]));
  const samples = new Map<string, Exchange[]>(targets.map((target) => [target.name, []]));
  try {
    const warmup = Math.ceil(settings.firstByte.requests / 10);
    for (let index = 0; index < warmup + settings.firstByte.requests; index += 1) {
      for (const target of targets) {
        const result = await exchange(pools.get(target.name)!, target, { prompt: LONG_PROMPT, stream: true });
        if (result.status !== 200 || result.textEvents === 0) throw new Error(`B3: ${target.name} answered HTTP ${result.status}`);
        if (index >= warmup) samples.get(target.name)!.push(result);
      }
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  const firstByte = (name: string, q: number) => percentile(samples.get(name)!.map((run) => run.firstByteAt - run.startedAt), q);
  const firstText = (name: string, q: number) => percentile(samples.get(name)!.map((run) => run.firstTextAt - run.startedAt), q);
  const rows = targets.map((target) => {
    const name = target.name;
    const isDirect = name === 'direct';
    return [
      name,
      formatNumber(firstByte(name, 50)),
      isDirect ? '—' : formatNumber(firstByte(name, 50) - firstByte('direct', 50)),
      formatNumber(firstText(name, 50)),
      formatNumber(firstText(name, 99)),
      isDirect ? '—' : formatNumber(firstText(name, 50) - firstText('direct', 50)),
      isDirect ? '—' : formatNumber(firstText(name, 99) - firstText('direct', 99)),
    ];
  });
  const added = firstText('gateway', 50) - firstText('direct', 50);
  return {
    id: 'B3',
    title: `streaming time to first byte / first text at concurrency 1 (${settings.firstByte.requests} streams per target, interleaved)`,
    header: ['target', 'first byte p50 ms', 'added', 'first text p50 ms', 'first text p99 ms', 'added p50', 'added p99'],
    rows,
    checks: [{ id: 'B3', metric: 'gateway added time to first text, p50', measured: `${formatNumber(added)} ms`, target: '≤ 1 ms', ok: added <= 1 }],
    notes: [
      'first byte: the first body byte (direct and pass-through: a Connect heartbeat frame; gateway and re-encoding: their first SSE bytes).',
      'first text: the first byte carrying answer text; the like-for-like measure across protocols.',
    ],
  };
}
