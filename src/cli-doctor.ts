/**
 * @module cli-doctor
 * The `doctor` command (contract.md "Operator surfaces"): runs the protocol steps for every server-side account
 * (KIMI_TOKENS / KIMI_TOKENS_FILE), prints `step | ok or FAIL | ms | detail`, and returns 1 when a step failed
 * (2 when there is nothing to check). `--record DIR` saves the redacted wire exchange as fixtures.
 */
import type { Config } from './config.ts';
import { formatDoctorTable } from './doctor/format-table.ts';
import { createDirectoryRecorder } from './doctor/recorder.ts';
import { runDoctor } from './doctor/run-doctor.ts';
import { storeTokenAccess } from './doctor/store-token-access.ts';
import { openStateStore } from './store/open-state-store.ts';
import { createUpstreamHttpFromConfig, doctorSettingsFrom } from './composition.ts';

export interface DoctorCommandOptions {
  recordDirectory?: string;
  /** Output streams (tests capture them). Default process.stdout / process.stderr. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export async function runDoctorCommand(config: Config, options: DoctorCommandOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  if (config.serverTokens.length === 0) {
    stderr.write('doctor checks the server-side accounts, and none are configured: set KIMI_TOKENS or KIMI_TOKENS_FILE.\n');
    return 2;
  }
  // The state store holds each account's latest rotated refresh token; the doctor must use it and save its own rotation.
  const store = await openStateStore({ redisUrl: config.REDIS_URL, stateFilePath: config.STATE_FILE });
  const http = createUpstreamHttpFromConfig(config, 'Mozilla/5.0 (compatible; kimi-free-api doctor)');
  try {
    const report = await runDoctor({
      ...doctorSettingsFrom(config),
      http,
      tokens: storeTokenAccess(store, { dialectMode: config.KIMI_DIALECT }),
      ...(options.recordDirectory ? { record: createDirectoryRecorder(options.recordDirectory) } : {}),
    });
    stdout.write(`${formatDoctorTable(report)}\n`);
    if (options.recordDirectory) stdout.write(`Wire exchange saved in ${options.recordDirectory} (tokens, cookies and JWTs redacted).\n`);
    return report.ok ? 0 : 1;
  } finally {
    await http.close();
    await store.close();
  }
}
