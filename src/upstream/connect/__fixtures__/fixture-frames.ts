/**
 * @module upstream/connect/__fixtures__/fixture-frames
 * Framed transcripts of protocol spec §3.14 kept as readable JSON lines (`{"flag":0,"data":{…}}`,
 * one envelope per line), and the helpers that turn them into wire bytes.
 */
import { readFileSync } from 'node:fs';
import { encodeEnvelope } from '../connect-framing.ts';

export interface FixtureFrame {
  flag: number;
  data: unknown;
}

export type FixtureName =
  | 'plain-answer'
  | 'thinking-answer'
  | 'search-answer'
  | 'overload-before-text'
  | 'exception-mid-answer';

export function readFixture(name: FixtureName): FixtureFrame[] {
  const text = readFileSync(new URL(`./${name}.jsonl`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as FixtureFrame);
}

/** The exact bytes a Connect server sends for these frames. */
export function framesToBytes(frames: FixtureFrame[]): Buffer {
  return Buffer.concat(frames.map((frame) => encodeEnvelope(JSON.stringify(frame.data), frame.flag)));
}

export function fixtureBytes(name: FixtureName): Buffer {
  return framesToBytes(readFixture(name));
}

/** Shorthand for building transcripts in tests: data frames, then one end-stream frame. */
export function transcript(dataFrames: unknown[], end: unknown = {}): FixtureFrame[] {
  return [...dataFrames.map((data) => ({ flag: 0, data })), { flag: 2, data: end }];
}

export function readAuthFailure(): { status: number; headers: Record<string, string>; body: unknown } {
  return JSON.parse(readFileSync(new URL('./auth-failure.json', import.meta.url), 'utf8'));
}
