/**
 * @module bench/b5-many-streams
 * B5: 2,000 concurrent long streams through the gateway. Measures the gateway process's memory per open
 * stream (RSS and heap+external over a GC'd baseline), its event-loop delay p99 while they run, how many
 * were open at once, and memory after they all ended (GC'd) against the baseline. Targets: ≤ 64 KiB per
 * stream, p99 ≤ 25 ms, back to baseline.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { startBenchStack } from './lib/bench-stack.ts';
import { exchange, type Exchange } from './lib/clients.ts';
import type { ChildStats } from './lib/child-stats.ts';
import type { Section } from './lib/report.ts';
import { LONG_PROMPT, SHORT_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, mebibytes, percentile } from './lib/stats.ts';

const kib = (bytes: number) => bytes / 1024;
const heapAndExternal = (stats: ChildStats) => stats.heapUsedBytes + stats.externalBytes;

/** The simulator's keep-alive (node:http default, 5 s) plus a margin. */
const idleConnectionsGoneMs = 6_000;

export async function runManyStreams(settings: BenchSettings): Promise<Section> {
  const { streams, chunkDelayMs, accounts } = settings.manyStreams;
  const stack = await startBenchStack({ simulator: { chunkDelayMs }, accounts, members: ['gateway'] });
  const gateway = stack.servers.gateway!;
  const target = stack.targets.gateway!;
  const pool = new Pool(target.url, { connections: streams, pipelining: 1, headersTimeout: 120_000, bodyTimeout: 120_000 });
  let isPoolClosed = false;
  try {
    // Warm-up: every account refreshed once, code paths compiled, sockets to the simulator opened.
    await Promise.all(Array.from({ length: accounts * 2 }, () => exchange(pool, target, { prompt: SHORT_PROMPT, stream: true })));
    await gateway.collectGarbage();
    const baseline = await gateway.stats();
    await gateway.resetEventLoop();

    let open = 0;
    let inFlight = 0;
    const started = performance.now();
    const runs: Promise<Exchange>[] = [];
    for (let index = 0; index < streams; index += 1) {
      inFlight += 1;
      const run = exchangeWithOpenCount(pool, target, () => (open += 1), () => (open -= 1));
      runs.push(run.finally(() => (inFlight -= 1)));
    }
    // Sample memory while streams are open; keep the sample taken with the most streams open.
    const plateau: { stats: ChildStats; open: number; inFlight: number }[] = [];
    let settled = false;
    const all = Promise.allSettled(runs).then((results) => ((settled = true), results));
    while (!settled) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (!settled) plateau.push({ stats: await gateway.stats(), open, inFlight });
    }
    const results = await all;
    const duringRun = await gateway.stats();
    const elapsedMs = performance.now() - started;
    const done = results.filter((result) => result.status === 'fulfilled' && result.value.status === 200 && result.value.textEvents > 0);
    const firstTexts = done.map((result) => (result as PromiseFulfilledResult<Exchange>).value).map((run) => run.firstTextAt - run.startedAt);
    const busiest = plateau.reduce((best, sample) => (sample.open > best.open ? sample : best), plateau[0] ?? { stats: baseline, open: 0, inFlight: 0 });

    // Idle keep-alive connections are not a leak: close ours to the gateway, and let the gateway's idle
    // connections to the simulator expire (it announces a 5 s keep-alive) before judging what is left.
    await pool.close();
    isPoolClosed = true;
    await new Promise((resolve) => setTimeout(resolve, idleConnectionsGoneMs));
    await gateway.collectGarbage();
    const after = await gateway.stats();

    // Requests waiting for an upstream slot hold memory too, so memory is divided by every request in flight.
    const perStreamRss = (busiest.stats.rssBytes - baseline.rssBytes) / Math.max(1, busiest.inFlight);
    const perStreamHeap = (heapAndExternal(busiest.stats) - heapAndExternal(baseline)) / Math.max(1, busiest.inFlight);
    const heapGrowth = heapAndExternal(after) - heapAndExternal(baseline);
    const backToBaseline = heapGrowth <= Math.max(2 * 1024 * 1024, 0.1 * heapAndExternal(baseline));
    const eventLoopP99 = duringRun.eventLoopDelay.p99;
    return {
      id: 'B5',
      title: `${streams} concurrent long streams (upstream ${chunkDelayMs} ms between frames, ${accounts} accounts)`,
      header: ['completed', 'in flight / open at once', 'first text p50 / p99 s', 'wall s', 'RSS base → peak MiB', 'KiB/stream RSS', 'KiB/stream heap+ext', 'loop delay p99 / max ms', 'heap+ext after − base MiB', 'RSS after MiB'],
      rows: [
        [
          `${done.length}/${streams}`,
          `${busiest.inFlight} / ${busiest.open}`,
          `${formatNumber(percentile(firstTexts, 50) / 1000)} / ${formatNumber(percentile(firstTexts, 99) / 1000)}`,
          formatNumber(elapsedMs / 1000),
          `${formatNumber(mebibytes(baseline.rssBytes))} → ${formatNumber(mebibytes(busiest.stats.rssBytes))}`,
          formatNumber(kib(perStreamRss)),
          formatNumber(kib(perStreamHeap)),
          `${formatNumber(eventLoopP99)} / ${formatNumber(duringRun.eventLoopDelay.max)}`,
          formatNumber(mebibytes(heapGrowth)),
          formatNumber(mebibytes(after.rssBytes)),
        ],
      ],
      checks: [
        { id: 'B5', metric: 'streams open at once', measured: `${busiest.open} of ${streams}`, target: `${streams}`, ok: busiest.open >= streams * 0.95 },
        { id: 'B5', metric: 'memory per stream in flight (RSS)', measured: `${formatNumber(kib(perStreamRss))} KiB`, target: '≤ 64 KiB', ok: perStreamRss <= 64 * 1024 && busiest.open > 0 },
        { id: 'B5', metric: 'event-loop delay p99', measured: `${formatNumber(eventLoopP99)} ms`, target: '≤ 25 ms', ok: eventLoopP99 <= 25 },
        { id: 'B5', metric: 'heap+external after the streams (GC) − baseline', measured: `${formatNumber(mebibytes(heapGrowth))} MiB`, target: '≤ max(2 MiB, 10 %)', ok: backToBaseline },
      ],
      notes: [
        'memory per stream = (gateway RSS at the sample with the most streams open − RSS after warm-up and GC) ÷ requests in flight at that sample.',
        'RSS rarely shrinks after a peak (the allocator keeps pages), so "back to baseline" is judged on heap+external after a full GC, once the idle keep-alive connections have closed (client pool closed, 6 s wait).',
        'What remains by design: each temporary chat\'s conversation record and pending deletion, kept for CHAT_RETENTION_SECONDS (600 s by default) so the chat can be continued and is deleted later.',
        `open = had received answer text and not ended; in flight = sent and not ended (${streams} sent at once).`,
      ],
    };
  } finally {
    if (!isPoolClosed) await pool.close();
    await stack.close();
  }
}

async function exchangeWithOpenCount(pool: Pool, target: Parameters<typeof exchange>[1], onOpen: () => void, onClose: () => void): Promise<Exchange> {
  let opened = false;
  const result = exchange(pool, target, { prompt: LONG_PROMPT, stream: true, onFirstText: () => ((opened = true), onOpen()) });
  try {
    return await result;
  } finally {
    if (opened) onClose();
  }
}
