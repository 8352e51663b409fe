/**
 * @module bench/gateway-process
 * Child process entry: the real gateway (src/main.ts) configured from the environment exactly as
 * `kimi-free-api serve` would be, plus the benchmark's stats channel (CPU, memory, event-loop delay).
 * Logs go to this process's stdout, which the benchmark discards, as a production log shipper would read it.
 */
import { loadConfig } from '../src/config.ts';
import { startGateway } from '../src/main.ts';
import { reportChildFailure, serveChildStats } from './lib/child-stats.ts';

try {
  const gateway = await startGateway(loadConfig({ env: process.env }), { version: 'bench' });
  let connections = 0;
  gateway.server.on('connection', (socket) => {
    connections += 1;
    socket.once('close', () => (connections -= 1));
  });
  process.once('SIGTERM', () => void gateway.close(500).then(() => process.exit(0)));
  serveChildStats(gateway.url, undefined, () => connections);
} catch (error) {
  reportChildFailure(error);
}
