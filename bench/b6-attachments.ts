/**
 * @module bench/b6-attachments
 * B6: one 100 MB attachment through the gateway, by URL (fetched from a loopback file server) and by base64
 * data URL in the request body. Each case runs in a fresh gateway process so its peak RSS
 * (process.resourceUsage().maxRSS) belongs to that request alone; reported against the file size.
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { gatewayEnvFor, startBenchStack } from './lib/bench-stack.ts';
import { listen } from './pass-through-proxy.ts';
import { spawnServer } from './lib/processes.ts';
import type { Section } from './lib/report.ts';
import type { BenchSettings } from './lib/settings.ts';
import { formatNumber, mebibytes } from './lib/stats.ts';

type Case = 'url' | 'base64';

/** Plain UTF-8 text (accepted as a document), written once to a temporary file. */
function writeTextFile(path: string, sizeBytes: number): void {
  const line = Buffer.from('Line of a large benchmark document — 大文件测试 — streamed, never held whole.\n');
  const block = Buffer.alloc(1024 * 1024);
  for (let offset = 0; offset < block.length; offset += line.length) line.copy(block, offset);
  const parts: Buffer[] = [];
  for (let written = 0; written < sizeBytes; written += block.length) parts.push(block.subarray(0, Math.min(block.length, sizeBytes - written)));
  // Cut at a line end so the file stays valid UTF-8.
  const whole = Buffer.concat(parts);
  const end = whole.lastIndexOf(0x0a) + 1;
  writeFileSync(path, Buffer.concat([whole.subarray(0, end), Buffer.alloc(sizeBytes - end, 0x20)]));
}

function fileServer(path: string, sizeBytes: number): Server {
  return createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': sizeBytes });
    createReadStream(path).pipe(res);
  });
}

export async function runAttachments(settings: BenchSettings): Promise<Section> {
  const { sizeBytes } = settings.attachments;
  const folder = mkdtempSync(join(tmpdir(), 'kfa-bench-b6-'));
  const filePath = join(folder, 'big.txt');
  writeTextFile(filePath, sizeBytes);
  const files = fileServer(filePath, sizeBytes);
  const fileUrl = `${await listen(files)}/big.txt`;
  const stack = await startBenchStack({ members: [], accounts: 2 });
  const rows: string[][] = [];
  const peaks = new Map<Case, number>();
  try {
    for (const which of ['url', 'base64'] as Case[]) {
      const gateway = await spawnServer({
        name: `gateway-${which}`,
        script: 'gateway-process.ts',
        env: gatewayEnvFor(stack.simulator.url, stack.accounts, join(folder, `state-${which}.json`)),
      });
      const pool = new Pool(gateway.url, { connections: 1, headersTimeout: 180_000, bodyTimeout: 180_000 });
      try {
        await ask(pool, 'warm up', undefined);
        await gateway.collectGarbage();
        const baseline = await gateway.stats();
        const part =
          which === 'url'
            ? { type: 'file', file_url: { url: fileUrl } }
            : { type: 'file', file: { filename: 'big.txt', file_data: `data:text/plain;base64,${readFileSync(filePath).toString('base64')}` } };
        const started = performance.now();
        const answer = await ask(pool, 'Summarise the attached file.', part, `(${sizeBytes} bytes`);
        const seconds = (performance.now() - started) / 1000;
        const after = await gateway.stats();
        const peakAbove = after.maxRssBytes - baseline.rssBytes;
        peaks.set(which, peakAbove);
        rows.push([
          which === 'url' ? 'by URL' : 'by base64 (JSON body)',
          formatNumber(mebibytes(sizeBytes)),
          answer.ok ? 'ok' : `FAILED: ${answer.detail}`,
          formatNumber(seconds),
          formatNumber(mebibytes(baseline.rssBytes)),
          formatNumber(mebibytes(after.maxRssBytes)),
          formatNumber(mebibytes(peakAbove)),
          `${formatNumber((peakAbove / sizeBytes) * 100, 0)} %`,
        ]);
      } finally {
        await pool.close();
        await gateway.close();
      }
    }
  } finally {
    await stack.close();
    files.closeAllConnections();
    await new Promise((resolve) => files.close(resolve));
    rmSync(folder, { recursive: true, force: true });
  }
  return {
    id: 'B6',
    title: `a ${formatNumber(sizeBytes / 1e6, 0)} MB attachment (fresh gateway process per case)`,
    header: ['attachment', 'file MiB', 'answer', 'seconds', 'RSS before MiB', 'peak RSS MiB', 'peak − before MiB', 'peak ÷ file size'],
    rows,
    checks: [
      { id: 'B6', metric: 'peak RSS above baseline, by URL', measured: `${formatNumber(mebibytes(peaks.get('url') ?? Number.NaN))} MiB`, target: '(reported)', ok: rows[0]?.[2] === 'ok' },
      { id: 'B6', metric: 'peak RSS above baseline, by base64', measured: `${formatNumber(mebibytes(peaks.get('base64') ?? Number.NaN))} MiB`, target: '(reported)', ok: rows[1]?.[2] === 'ok' },
    ],
    notes: [
      'by URL the file is streamed from a loopback server to the upload; by base64 the 133 MB JSON body is read while large base64 strings are spooled to temporary files (issue 4), so neither case needs the file in memory.',
      'peak RSS is process.resourceUsage().maxRSS of the fresh gateway process; "before" is its RSS after one small warm-up request and a GC.',
    ],
  };
}

/** `expect`: text the simulated reply must contain (it names each received file with its size). */
async function ask(pool: Pool, text: string, part: Record<string, unknown> | undefined, expect = ''): Promise<{ ok: boolean; detail: string }> {
  const content = part ? [{ type: 'text', text }, part] : text;
  const response = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content }] }),
  });
  const body = await response.body.text();
  if (response.statusCode !== 200) return { ok: false, detail: `HTTP ${response.statusCode} ${body.slice(0, 160)}` };
  const reply = String(JSON.parse(body)?.choices?.[0]?.message?.content ?? '');
  return reply.includes(expect) ? { ok: true, detail: '' } : { ok: false, detail: `the reply does not name the file's size: ${reply.slice(0, 160)}` };
}
