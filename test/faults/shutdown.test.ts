// Fault suite (issue 7): SIGTERM with streams open, on the real CLI (`node src/cli.ts serve` in a child
// process). New connections are refused at once; open streams finish within SHUTDOWN_GRACE_MS or end with an
// error payload (code shutting_down) and no [DONE]; the process exits 0 (contract "Operator surfaces").
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { simulatedReply, startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { chat, parseSse, type ChatResult } from '../support/gateway-client.ts';

const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
let simulator: Simulator;
let folder: string;

before(async () => {
  simulator = await startSimulator({ maxConcurrentStreamsPerAccount: 10 });
  folder = mkdtempSync(join(tmpdir(), 'kfa-shutdown-'));
});
after(async () => {
  await simulator?.close();
  rmSync(folder, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  port: number;
  exited: Promise<number | null>;
  /** Everything the process has printed so far. */
  output(): string;
}

async function serve(graceMs: number, name: string): Promise<Served> {
  const account = simulator.issueAccount();
  const child = spawn(process.execPath, [cliPath, 'serve'], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      KIMI_BASE_URL: simulator.url,
      KIMI_AUTH_URL: simulator.url,
      KIMI_LEGACY_BASE_URL: simulator.url,
      KIMI_TOKENS: account.refreshToken,
      STATE_FILE: join(folder, `${name}.json`),
      SHUTDOWN_GRACE_MS: String(graceMs),
      ACCOUNT_MAX_CONCURRENCY: '4',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start: ${output}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /"port":(\d+)[^\n]*listening|listening[^\n]*"port":(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1] ?? match[2]));
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    void exited.then((code) => reject(new Error(`the gateway exited (${code}) during start-up: ${output}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, port, exited, output: () => output };
}

/** Starts a slow stream; resolves `started` at its first content chunk and `result` when it ends. */
function slowStream(url: string, prompt: string): { started: Promise<void>; result: Promise<ChatResult> } {
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const result = (async () => {
    const response = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: prompt }] }),
    });
    let raw = '';
    for await (const chunk of response.body) {
      raw += chunk.toString();
      if (raw.includes('"content"')) markStarted();
    }
    return { status: response.statusCode, headers: response.headers, elapsedMs: 0, ...parseSse(raw) };
  })();
  return { started, result };
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

test('SIGTERM with streams open and enough grace: new connections refused, open streams finish with [DONE], exit code 0', async () => {
  const served = await serve(8_000, 'graceful');
  const prompts = [0, 1, 2].map((index) => `finish me ${index} [[sim:slow]]`);
  const streams = prompts.map((prompt) => slowStream(served.url, prompt));
  await Promise.all(streams.map((stream) => stream.started));
  served.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(await connectionRefused(served.port), true, 'a new connection is refused during the drain');
  const results = await Promise.all(streams.map((stream) => stream.result));
  results.forEach((result, index) => {
    assert.equal(result.done, true);
    assert.equal(result.streamError, undefined);
    assert.equal(result.text, simulatedReply({ userText: prompts[index], turn: 1 }).text);
  });
  assert.equal(await served.exited, 0);
  // Standard output is written in batches: whatever was pending at exit must still be there.
  const lines = served.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; route?: string });
  assert.equal(lines.filter((line) => line.msg === 'request' && line.route === '/v1/chat/completions').length, 3, 'one request line per stream');
  assert.equal(lines.at(-1)?.msg, 'kimi-free-api stopped');
});

test('SIGTERM with streams longer than SHUTDOWN_GRACE_MS: they end with a shutting_down error payload and no [DONE], exit code 0 soon after the grace', async () => {
  const graceMs = 300;
  const served = await serve(graceMs, 'cut');
  const streams = [0, 1].map((index) => slowStream(served.url, `too long ${index} [[sim:slow]]`));
  await Promise.all(streams.map((stream) => stream.started));
  const signalledAt = Date.now();
  served.child.kill('SIGTERM');
  const results = await Promise.all(streams.map((stream) => stream.result));
  for (const result of results) {
    assert.equal(result.done, false);
    assert.equal(result.streamError?.code, 'shutting_down');
  }
  assert.equal(await served.exited, 0);
  assert.ok(Date.now() - signalledAt < graceMs + 3_000, 'exit soon after the grace period');
});

/** Resolves once the process has printed `text` (a line flushed at once), so the next signal cannot merge with an unhandled one. */
async function printed(served: Served, text: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!served.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`never printed "${text}": ${served.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function logLines(served: Served): { msg: string; route?: string; signal?: string }[] {
  return served.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; route?: string; signal?: string });
}

test('a second signal during the drain ends open streams at once (shutting_down, no [DONE]); the shutdown still completes: exit code 0, no log line lost', async () => {
  const served = await serve(30_000, 'second-signal');
  const streams = [0, 1].map((index) => slowStream(served.url, `cut me ${index} [[sim:slow]]`));
  await Promise.all(streams.map((stream) => stream.started));
  served.child.kill('SIGTERM');
  await printed(served, 'shutting down');
  const secondAt = Date.now();
  served.child.kill('SIGINT');
  const results = await Promise.all(streams.map((stream) => stream.result));
  const endedAfterMs = Date.now() - secondAt;
  for (const result of results) {
    assert.equal(result.done, false);
    assert.equal(result.streamError?.code, 'shutting_down');
  }
  // The slow scenario would run for seconds more and the grace is 30 s: only the second signal ends them this soon.
  assert.ok(endedAfterMs < 1_500, `streams ended ${endedAfterMs} ms after the second signal`);
  assert.equal(await served.exited, 0);
  const lines = logLines(served);
  assert.equal(lines.filter((line) => line.msg === 'request' && line.route === '/v1/chat/completions').length, 2, 'one request line per stream');
  assert.deepEqual(lines.filter((line) => line.signal).map((line) => line.signal), ['SIGTERM', 'SIGINT']);
  assert.equal(lines.at(-1)?.msg, 'kimi-free-api stopped');
});

test('a third signal exits within a second with code 1, for a shutdown that hangs; the batched log and the pending state are still written out', async () => {
  const served = await serve(30_000, 'third-signal');
  // Answered just before: its chat's deletion job is in memory, waiting for the state file's next write.
  const answered = await chat(served.url, { prompt: 'answered just before' });
  assert.equal(answered.status, 200);
  const stream = slowStream(served.url, 'never finished [[sim:slow]]');
  const cutOff = stream.result.catch(() => undefined); // undefined if the socket closed without the error payload
  await stream.started;
  served.child.kill('SIGTERM');
  await printed(served, 'shutting down');
  // Two more at once: both are handled before the shutdown can move on (different signals never merge).
  const thirdAt = Date.now();
  served.child.kill('SIGINT');
  served.child.kill('SIGTERM');
  assert.equal(await served.exited, 1);
  assert.ok(Date.now() - thirdAt < 3_000, 'exits without waiting for the 30 s grace');
  const cut = await cutOff;
  assert.equal(cut?.streamError?.code, 'shutting_down', 'the stream was ended with an error payload before the exit');
  const lines = logLines(served);
  assert.equal(lines.filter((line) => line.signal).length, 3);
  assert.ok(lines.some((line) => /^third signal/.test(line.msg)), 'the line logged just before exit(1) was written out');
  const written = readdirSync(folder).filter((file) => file.startsWith('third-signal.json')).map((file) => readFileSync(join(folder, file), 'utf8')).join('\n');
  assert.ok(written.includes(`del:${answered.json.id}`), 'the answered chat\'s deletion job reached the state file');
  assert.ok(written.includes(`del:${cut?.chunks[0]?.id}`), 'so did the job of the chat cut short (its answer had started)');
});
