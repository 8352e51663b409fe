/**
 * @module bench/b3-no-buffering
 * B3 proof that nothing buffers: the simulator pauses `chunkDelayMs` between frames; a tap (the pass-through
 * proxy, in this process) between gateway and simulator timestamps each answer-text frame as it leaves the
 * upstream side, and the client timestamps when the same text arrives. The proof holds when every text
 * event reaches the client before the tap sees the next one, i.e. the gateway never waits for more input.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { SimulatedAccount } from '../simulator/simulator.ts';
import { createPassThroughProxy, listen } from './pass-through-proxy.ts';
import { gatewayEnvFor } from './lib/bench-stack.ts';
import { chatPath, createClientPool, exchange, type Target } from './lib/clients.ts';
import { answerTextOf, FrameDecoder } from './lib/connect-frames.ts';
import { spawnServer, type ServerProcess } from './lib/processes.ts';
import type { Section } from './lib/report.ts';
import { LONG_PROMPT, type BenchSettings } from './lib/settings.ts';
import { formatNumber, percentile } from './lib/stats.ts';

interface TapMark {
  at: number;
  /** Answer length (UTF-16 units) once this frame's text is added. */
  length: number;
}

export interface StreamProof {
  events: number;
  /** Per text event: client arrival minus tap time. */
  delaysMs: number[];
  /** Events that reached the client only after the tap had already passed the next one. */
  heldBack: number;
  textMatches: boolean;
}

/** Pairs each tapped frame with the first client read whose answer length covers it. */
export function proveStream(marks: TapMark[], clientTimes: number[], clientLengths: number[], clientText: string, tappedLength: number): StreamProof {
  const delaysMs: number[] = [];
  let heldBack = 0;
  let cursor = 0;
  marks.forEach((mark, index) => {
    while (cursor < clientLengths.length && clientLengths[cursor] < mark.length) cursor += 1;
    const arrived = clientTimes[cursor] ?? Number.POSITIVE_INFINITY;
    delaysMs.push(arrived - mark.at);
    const next = marks[index + 1];
    if (next && arrived >= next.at) heldBack += 1;
  });
  return { events: marks.length, delaysMs, heldBack, textMatches: clientText.length === tappedLength };
}

export async function runNoBuffering(settings: BenchSettings): Promise<Section> {
  const { proofStreams, proofChunkDelayMs } = settings.firstByte;
  const folder = mkdtempSync(join(tmpdir(), 'kfa-bench-proof-'));
  const started: ServerProcess[] = [];
  let marks: TapMark[] = [];
  let tappedLength = 0;
  const recordFrames = (path: string) => {
    if (path !== chatPath) return undefined;
    const decoder = new FrameDecoder();
    marks = [];
    tappedLength = 0;
    return (chunk: Buffer) => {
      const at = performance.now();
      for (const frame of decoder.push(chunk)) {
        const piece = frame.flags === 0 ? answerTextOf(JSON.parse(frame.payload.toString('utf8'))) : undefined;
        if (piece === undefined) continue;
        tappedLength += piece.length;
        marks.push({ at, length: tappedLength });
      }
    };
  };
  let tap: Server | undefined;
  try {
    const simulator = await spawnServer({
      name: 'simulator',
      script: 'simulator-process.ts',
      env: { BENCH_SIMULATOR_OPTIONS: JSON.stringify({ chunkDelayMs: proofChunkDelayMs }), BENCH_ACCOUNTS: '1' },
    });
    started.push(simulator);
    // The tap forwards to the simulator; the gateway is pointed at the tap.
    tap = createPassThroughProxy(simulator.url, recordFrames);
    const tapUrl = await listen(tap);
    const accounts = (simulator.extra as { accounts: SimulatedAccount[] }).accounts;
    const gateway = await spawnServer({ name: 'gateway', script: 'gateway-process.ts', env: gatewayEnvFor(tapUrl, accounts, join(folder, 'state.json')) });
    started.push(gateway);
    const target: Target = { name: 'gateway', url: gateway.url, protocol: 'openai' };
    const pool = createClientPool(target, 1);
    const proofs: StreamProof[] = [];
    try {
      await exchange(pool, target, { prompt: 'warm up', stream: true });
      for (let index = 0; index < proofStreams; index += 1) {
        const result = await exchange(pool, target, { prompt: LONG_PROMPT, stream: true, recordTimes: true });
        proofs.push(proveStream(marks, result.textTimes, result.textLengths, result.text, tappedLength));
      }
    } finally {
      await pool.close();
    }
    const delays = proofs.flatMap((proof) => proof.delaysMs);
    const heldBack = proofs.reduce((total, proof) => total + proof.heldBack, 0);
    const events = proofs.reduce((total, proof) => total + proof.events, 0);
    const textOk = proofs.every((proof) => proof.textMatches);
    return {
      id: 'B3b',
      title: `no buffering: ${proofStreams} streams, upstream pauses ${proofChunkDelayMs} ms between frames`,
      header: ['text events', 'held back until the next arrived', 'tap → client p50 ms', 'p99 ms', 'max ms', 'text identical'],
      rows: [[String(events), String(heldBack), formatNumber(percentile(delays, 50)), formatNumber(percentile(delays, 99)), formatNumber(Math.max(...delays)), textOk ? 'yes' : 'NO']],
      checks: [
        {
          id: 'B3b',
          metric: 'text events delivered before the next upstream event',
          measured: `${events - heldBack} of ${events}`,
          target: 'all',
          ok: heldBack === 0 && events > 0 && textOk,
        },
      ],
      notes: ['tap: the pass-through reference proxy in the benchmark process, timestamping each decoded Connect text frame as it passes.'],
    };
  } finally {
    await Promise.all(started.map((server) => server.close()));
    tap?.closeAllConnections();
    if (tap) await new Promise((resolve) => tap!.close(resolve));
    rmSync(folder, { recursive: true, force: true });
  }
}
