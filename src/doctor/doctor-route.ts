/**
 * @module doctor/doctor-route
 * `GET /v1/doctor` (issue 10): runs the doctor on the gateway's accounts and answers the report as JSON (the
 * gateway key is required when one is set). `?fixtures=1` adds the redacted wire exchange to the answer. One run
 * at a time: concurrent requests share the run in progress, since each run sends a real chat per account.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { sendJson, type HttpContext } from '../http/http-context.ts';
import type { DoctorReport } from './doctor-types.ts';
import { createMemoryRecorder, type Recorder } from './recorder.ts';
import type { WireFixture } from './wire-fixture.ts';

export interface DoctorRouteDeps {
  /** Throws the gateway's 401 when API_KEYS is set and the request has no valid key. */
  requireGatewayKey(headers: IncomingHttpHeaders): void;
  /** Runs the doctor over the configured accounts (the composition root binds URLs, tokens, http and store). */
  runDoctor(options: { signal: AbortSignal; record?: Recorder }): Promise<DoctorReport>;
}

type DoctorAnswer = DoctorReport & { fixtures?: WireFixture[] };

export function doctorRoute(deps: DoctorRouteDeps) {
  const inFlight = new Map<boolean, Promise<DoctorAnswer>>();

  function run(withFixtures: boolean): Promise<DoctorAnswer> {
    const running = inFlight.get(withFixtures);
    if (running) return running;
    const recorder = withFixtures ? createMemoryRecorder() : undefined;
    // Not tied to one client's connection: others may be waiting on the same run; each step has its own timeout.
    const started = deps
      .runDoctor({ signal: new AbortController().signal, record: recorder })
      .then((report) => (recorder ? { ...report, fixtures: recorder.fixtures } : report))
      .finally(() => inFlight.delete(withFixtures));
    inFlight.set(withFixtures, started);
    return started;
  }

  return async (context: HttpContext) => {
    deps.requireGatewayKey(context.request.headers);
    const withFixtures = ['1', 'true', 'yes'].includes(context.url.searchParams.get('fixtures') ?? '');
    // 200 either way: the report's `ok` and each row's `result` say what failed; the doctor itself worked.
    sendJson(context, 200, await run(withFixtures), { 'cache-control': 'no-store' });
  };
}
