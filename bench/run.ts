/**
 * @module bench/run
 * `npm run bench` (issue 7): runs B1–B6 on loopback against the simulator, side by side with direct access
 * and the two reference proxies, and prints one table per benchmark and the targets met or missed.
 * Flags: --quick (about 1 minute), --only B1,B4 (a subset), --json FILE (raw sections for docs),
 * --profile DIR (steady-state CPU profiles of each server during B4, for finding hot spots),
 * --gateway-env KEY=VALUE,... (extra gateway settings for what-if runs, e.g. STATE_FILE= or CHAT_RETENTION_SECONDS=-1).
 * Never part of `npm test`: timings are reported, not asserted.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runThroughput } from './b1-throughput.ts';
import { latencySection, measureLatency, type LatencyRound } from './b2-latency.ts';
import { firstByteSection, measureFirstByte, type FirstByteRound } from './b3-first-byte.ts';
import { runNoBuffering } from './b3-no-buffering.ts';
import { runCpuPerEvent } from './b4-cpu-per-event.ts';
import { runManyStreams } from './b5-many-streams.ts';
import { runAttachments } from './b6-attachments.ts';
import { startBenchStack } from './lib/bench-stack.ts';
import type { Target } from './lib/clients.ts';
import { renderChecks, renderSection, type Section } from './lib/report.ts';
import { benchSettings } from './lib/settings.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' }, json: { type: 'string' }, profile: { type: 'string' }, 'gateway-env': { type: 'string' } } });
const settings = benchSettings(values.quick === true, values.profile ? resolve(values.profile) : undefined);
// The profile folder may not exist yet; each server process writes its profile into it.
if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });
const selected = new Set((values.only ?? 'B1,B2,B3,B4,B5,B6').toUpperCase().split(',').map((id) => id.trim()));
const wants = (id: string) => selected.has(id);
const gatewayEnv = Object.fromEntries(
  (values['gateway-env'] ?? '').split(',').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

/** Open-file limit of this process; 2,000 streams need about 2,000 descriptors in each process. */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((row) => row.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? Number.NaN);
}

const sections: Section[] = [];
const print = (section: Section) => {
  sections.push(section);
  process.stdout.write(`\n${renderSection(section)}\n`);
};
const started = Date.now();
process.stdout.write(`kimi-free-api benchmark${settings.quick ? ' (--quick)' : ''}\nmachine: ${machine()}\n`);
const limit = openFileLimit();
if (wants('B5') && limit < 8_192) process.stdout.write(`warning: open-file limit is ${limit}; B5 needs about 8,192 (run \`ulimit -n 65536\` first)\n`);

/**
 * A fresh set of processes per benchmark group: the gateway's state grows with every request it answers
 * (conversation records), so sharing one gateway would make later figures depend on the earlier load.
 */
async function withReferenceStack(run: (all: Target[], stack: Awaited<ReturnType<typeof startBenchStack>>) => Promise<void>): Promise<void> {
  const stack = await startBenchStack({ members: ['pass-through', 're-encoding', 'gateway'], accounts: 4, gatewayEnv });
  try {
    await run([stack.targets.direct, stack.targets['pass-through']!, stack.targets['re-encoding']!, stack.targets.gateway!], stack);
  } finally {
    await stack.close();
  }
}

if (wants('B1')) await withReferenceStack(async (all) => print(await runThroughput(all, settings)));
if (wants('B2') || wants('B3')) {
  // Rounds on fresh processes: the concurrency-1 figures move more between processes than within one.
  const latencyRounds: LatencyRound[] = [];
  const firstByteRounds: FirstByteRound[] = [];
  let targets: Target[] = [];
  for (let round = 0; round < settings.latency.rounds; round += 1) {
    await withReferenceStack(async (all, stack) => {
      targets = all;
      const servers = new Map((['pass-through', 're-encoding', 'gateway'] as const).map((name) => [name, stack.servers[name]!]));
      if (wants('B2')) latencyRounds.push(await measureLatency(all, servers, settings));
      if (wants('B3')) firstByteRounds.push(await measureFirstByte(all, settings));
    });
  }
  if (wants('B2')) print(latencySection(targets, latencyRounds, settings));
  if (wants('B3')) print(firstByteSection(targets, firstByteRounds, settings));
}
if (wants('B4')) {
  await withReferenceStack(async (_all, stack) => {
    const measured = (['pass-through', 're-encoding', 'gateway'] as const).map((name) => ({ target: stack.targets[name]!, server: stack.servers[name]! }));
    print(await runCpuPerEvent(stack.targets.direct, measured, settings));
  });
}
if (wants('B3')) print(await runNoBuffering(settings));
if (wants('B5')) print(await runManyStreams(settings));
if (wants('B6')) print(await runAttachments(settings));

process.stdout.write(`\n### Targets (issue 7)\n\n${renderChecks(sections.flatMap((section) => section.checks))}\n`);
process.stdout.write(`\nmachine: ${machine()}; total ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: machine(), quick: settings.quick, sections }, null, 2));
