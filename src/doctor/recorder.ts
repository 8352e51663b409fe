/**
 * @module doctor/recorder
 * Where `doctor --record DIR` puts the redacted wire exchange: one JSON file per request, numbered in order,
 * named after the account, the step and the RPC, ready to attach to a bug report. Fixtures arrive already
 * redacted (wire-fixture.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WireFixture } from './wire-fixture.ts';

export interface Recorder {
  record(fixture: WireFixture): Promise<void>;
}

export function createDirectoryRecorder(directory: string): Recorder {
  let count = 0;
  let isReady: Promise<unknown> | undefined;
  return {
    async record(fixture) {
      isReady ??= mkdir(directory, { recursive: true, mode: 0o700 });
      await isReady;
      count += 1;
      const name = [String(count).padStart(3, '0'), fixture.target, fixture.step, rpcName(fixture.request.url)].filter(Boolean).join('-');
      await writeFile(join(directory, `${safeName(name)}.json`), `${JSON.stringify(fixture, null, 2)}\n`, { mode: 0o600 });
    },
  };
}

/** A recorder that keeps fixtures in memory (tests, and the HTTP endpoint when it returns them). */
export function createMemoryRecorder(): Recorder & { fixtures: WireFixture[] } {
  const fixtures: WireFixture[] = [];
  return {
    fixtures,
    async record(fixture) {
      fixtures.push(fixture);
    },
  };
}

/** `…/ChatService/Chat` → `Chat`; `/api/chat/{id}/completion/stream` → `stream`. */
function rpcName(url: string): string {
  try {
    const segments = new URL(url).pathname.split('/').filter(Boolean);
    return segments.at(-1) ?? '';
  } catch {
    return '';
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
}
