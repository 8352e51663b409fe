/**
 * @module bench/simulator-process
 * Child process entry: the upstream simulator for the benchmark, in its own process so it does not share
 * an event loop with the load generator or the server being measured. Options come as JSON in
 * BENCH_SIMULATOR_OPTIONS; BENCH_ACCOUNTS accounts are issued and sent to the parent with `ready`.
 */
import { startSimulator, type SimulatorOptions } from '../simulator/simulator.ts';
import { reportChildFailure, serveChildStats } from './lib/child-stats.ts';

try {
  const options = JSON.parse(process.env.BENCH_SIMULATOR_OPTIONS ?? '{}') as SimulatorOptions;
  // Recording every request would grow the simulator's memory over a long run; keep a few.
  const simulator = await startSimulator({ maxRecordedRequests: 100, ...options });
  const accounts = Array.from({ length: Number(process.env.BENCH_ACCOUNTS ?? '1') }, () => simulator.issueAccount());
  process.once('SIGTERM', () => void simulator.close().then(() => process.exit(0)));
  serveChildStats(simulator.url, { accounts });
} catch (error) {
  reportChildFailure(error);
}
