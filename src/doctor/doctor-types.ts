/**
 * @module doctor/doctor-types
 * The doctor's report (issue 10, contract.md "doctor prints one row per step: step | ok or FAIL | ms | detail").
 * Types only.
 */

/** `skip`: the step could not run because an earlier step of the same account failed (that row is the FAIL). */
export type DoctorResult = 'ok' | 'FAIL' | 'skip';

export type HostStep = 'dns' | 'connect' | 'clock';
export type AccountStep = 'refresh' | 'current-user' | 'models' | 'chat' | 'delete-chat';
export type DoctorStep = HostStep | AccountStep;

export interface DoctorRow {
  step: DoctorStep;
  /** The host (`www.kimi.com`) for host steps, the account id (a hash of its token, never the token) otherwise. */
  target: string;
  result: DoctorResult;
  /** Wall time of the step in milliseconds. */
  ms: number;
  /** One line for the table; on failure it names the spec section, the expected and the observed shape. */
  detail: string;
  /** Section of the protocol spec the observation contradicts, e.g. `§3.6`. */
  section?: string;
  expected?: string;
  observed?: string;
  /** Things the upstream sent that this version does not know (tolerated, shown as drift). */
  drift?: string[];
}

export interface DoctorReport {
  /** False when any row failed. */
  ok: boolean;
  startedAt: string;
  durationMs: number;
  rows: DoctorRow[];
  /** Every unknown thing seen, deduplicated (`event:widget`, `field:block.content`, …). */
  drift: string[];
}

/** A contradiction between what the spec says and what came over the wire. */
export interface Finding {
  section: string;
  expected: string;
  observed: string;
  /** True when the step cannot be counted as working (a required shape is missing or wrong). */
  isFatal: boolean;
}
