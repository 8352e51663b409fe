/**
 * @module bench/b4-cpu-per-event
 * B4: CPU per streamed upstream event, measured with process.cpuUsage() of each server's own process over
 * a closed loop of streams. Two figures: the average over whole streams (per-request work included) and
 * the marginal cost of one more event (long streams minus short streams, divided by the extra events).
 * The long streams use the simulator's `long-answer` scenario (about 540 frames against 18), so both figures
 * describe streaming rather than the per-request set-up (with 36-frame streams they moved 0.5–3× between runs).
 * Target: gateway ≤ 1.4× the minimal re-encoding reference (dependencies.md "How to read the targets").
 */
import { join } from 'node:path';
import { closedLoop, createClientPool, exchange, type Target } from './lib/clients.ts';
import type { ServerProcess } from './lib/processes.ts';
import type { Section } from './lib/report.ts';
import { MANY_EVENTS_PROMPT, SHORT_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, formatRatio, median } from './lib/stats.ts';

interface CpuSample {
  microsPerStream: number;
  streams: number;
}

export async function runCpuPerEvent(direct: Target, measured: { target: Target; server: ServerProcess }[], settings: BenchSettings): Promise<Section> {
  const { concurrency, roundMs, rounds } = settings.cpu;
  const framesPer = new Map<string, number>();
  const directPool = createClientPool(direct, 1);
  for (const prompt of [SHORT_PROMPT, MANY_EVENTS_PROMPT]) framesPer.set(prompt, (await exchange(directPool, direct, { prompt, stream: true })).frames);
  await directPool.close();

  const samples = new Map<string, CpuSample[]>();
  // Warm-up: JIT and connection pools settle before anything is counted.
  for (const { target } of measured) {
    const pool = createClientPool(target, concurrency);
    for (const prompt of [SHORT_PROMPT, MANY_EVENTS_PROMPT]) await closedLoop(concurrency, roundMs / 2, () => exchange(pool, target, { prompt, stream: true }));
    await pool.close();
  }
  for (let round = 0; round < rounds; round += 1) {
    for (const { target, server } of measured) {
      const pool = createClientPool(target, concurrency);
      try {
        // Alternate the order so neither prompt always runs on a fresher process.
        for (const prompt of round % 2 === 0 ? [SHORT_PROMPT, MANY_EVENTS_PROMPT] : [MANY_EVENTS_PROMPT, SHORT_PROMPT]) {
          const profile = settings.profileDir && round === rounds - 1 && prompt === MANY_EVENTS_PROMPT;
          if (profile) await server.startProfile();
          const before = await server.stats();
          const load = await closedLoop(concurrency, roundMs, () => exchange(pool, target, { prompt, stream: true }));
          const after = await server.stats();
          if (profile) await server.stopProfile(join(settings.profileDir!, `b4-${target.name}.cpuprofile`));
          if (load.failed > 0) throw new Error(`B4: ${target.name}: ${load.failed} streams failed (${load.firstFailure})`);
          const key = `${target.name}|${prompt}`;
          const list = samples.get(key) ?? [];
          list.push({ microsPerStream: (after.cpuMicros - before.cpuMicros) / load.completed, streams: load.completed });
          samples.set(key, list);
        }
      } finally {
        await pool.close();
      }
    }
  }
  const shortFrames = framesPer.get(SHORT_PROMPT)!;
  const longFrames = framesPer.get(MANY_EVENTS_PROMPT)!;
  const perStream = (name: string, prompt: string) => median(samples.get(`${name}|${prompt}`)!.map((sample) => sample.microsPerStream));
  const averagePerEvent = (name: string) => perStream(name, MANY_EVENTS_PROMPT) / longFrames;
  const marginalPerEvent = (name: string) => (perStream(name, MANY_EVENTS_PROMPT) - perStream(name, SHORT_PROMPT)) / (longFrames - shortFrames);
  const rows = measured.map(({ target }) => [
    target.name,
    formatNumber(perStream(target.name, SHORT_PROMPT)),
    formatNumber(perStream(target.name, MANY_EVENTS_PROMPT)),
    formatNumber(averagePerEvent(target.name)),
    formatRatio(averagePerEvent(target.name) / averagePerEvent('re-encoding')),
    formatNumber(marginalPerEvent(target.name)),
    formatRatio(marginalPerEvent(target.name) / marginalPerEvent('re-encoding')),
  ]);
  const marginalRatio = marginalPerEvent('gateway') / marginalPerEvent('re-encoding');
  const averageRatio = averagePerEvent('gateway') / averagePerEvent('re-encoding');
  return {
    id: 'B4',
    title: `CPU per streamed event (${shortFrames} and ${longFrames} upstream frames per stream, ${concurrency} concurrent streams, ${rounds} rounds)`,
    header: ['server', 'µs/stream short', 'µs/stream long', 'µs/event (long)', '÷ re-encoding', 'µs/extra event', '÷ re-encoding'],
    rows,
    checks: [
      { id: 'B4', metric: 'gateway CPU per extra event ÷ re-encoding reference', measured: formatRatio(marginalRatio), target: '≤ 1.4×', ok: marginalRatio <= 1.4 },
      { id: 'B4', metric: 'gateway CPU per event incl. per-request work ÷ re-encoding', measured: formatRatio(averageRatio), target: '≤ 1.4×', ok: averageRatio <= 1.4 },
    ],
    notes: [
      'µs/event (long) = CPU of a long stream ÷ its upstream frames: includes the per-request work (auth, pool, prompt, chat creation).',
      'µs/extra event = (CPU of a long stream − CPU of a short one) ÷ the extra frames: the per-event streaming path alone.',
    ],
  };
}
