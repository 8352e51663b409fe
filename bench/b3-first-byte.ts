/**
 * @module bench/b3-first-byte
 * B3: streaming time to first byte and to first answer text, added over direct, at concurrency 1,
 * interleaved. Target: the gateway adds ≤ 1 ms at p50 (judged on the first answer text, the first byte that
 * means the same thing on both protocols), as the median of rounds on fresh processes (see b2-latency.ts).
 * The no-buffering proof lives in b3-no-buffering.ts.
 */
import { createClientPool, exchange, type Exchange, type Target } from './lib/clients.ts';
import type { Section } from './lib/report.ts';
import { LONG_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, median, percentile } from './lib/stats.ts';

export type FirstByteRound = Map<string, Exchange[]>;

export async function measureFirstByte(targets: Target[], settings: BenchSettings): Promise<FirstByteRound> {
  const pools = new Map(targets.map((target) => [target.name, createClientPool(target, 1)]));
  const samples: FirstByteRound = new Map(targets.map((target) => [target.name, []]));
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
  return samples;
}

export function firstByteSection(targets: Target[], rounds: FirstByteRound[], settings: BenchSettings): Section {
  const firstByte = (round: FirstByteRound, name: string, q: number) => percentile(round.get(name)!.map((run) => run.firstByteAt - run.startedAt), q);
  const firstText = (round: FirstByteRound, name: string, q: number) => percentile(round.get(name)!.map((run) => run.firstTextAt - run.startedAt), q);
  const medianOfRounds = (value: (round: FirstByteRound) => number) => median(rounds.map(value));
  const addedText = (name: string) => rounds.map((round) => firstText(round, name, 50) - firstText(round, 'direct', 50));
  const rows = targets.map((target) => {
    const name = target.name;
    const isDirect = name === 'direct';
    return [
      name,
      formatNumber(medianOfRounds((round) => firstByte(round, name, 50))),
      isDirect ? '—' : formatNumber(medianOfRounds((round) => firstByte(round, name, 50) - firstByte(round, 'direct', 50))),
      formatNumber(medianOfRounds((round) => firstText(round, name, 50))),
      formatNumber(medianOfRounds((round) => firstText(round, name, 99))),
      isDirect ? '—' : formatNumber(median(addedText(name))),
      isDirect ? '—' : formatNumber(medianOfRounds((round) => firstText(round, name, 99) - firstText(round, 'direct', 99))),
    ];
  });
  const perRound = addedText('gateway');
  const added = median(perRound);
  return {
    id: 'B3',
    title: `streaming time to first byte / first text at concurrency 1 (${rounds.length} round${rounds.length === 1 ? '' : 's'} on fresh processes, ${settings.firstByte.requests} streams per target each, interleaved)`,
    header: ['target', 'first byte p50 ms', 'added', 'first text p50 ms', 'first text p99 ms', 'added p50', 'added p99'],
    rows,
    checks: [
      {
        id: 'B3',
        metric: 'gateway added time to first text, p50',
        measured: `${formatNumber(added)} ms${rounds.length > 1 ? ` (rounds ${perRound.map((value) => formatNumber(value)).join(', ')})` : ''}`,
        target: '≤ 1 ms',
        ok: added <= 1,
      },
    ],
    notes: [
      'first byte: the first body byte (direct and pass-through: a Connect heartbeat frame; gateway and re-encoding: their first SSE bytes).',
      'first text: the first byte carrying answer text; the like-for-like measure across protocols.',
      'every figure is the median of the rounds\' figures.',
    ],
  };
}
