/**
 * @module bench/lib/settings
 * Durations and sizes of one benchmark run (full: about 4 minutes; --quick: 1–1.5 minutes), and the
 * prompts used. The simulator's reply echoes up to 120 characters of the prompt, so the long prompt makes
 * long streams (about 40 upstream events) and the short one short streams (about 15).
 */

export interface BenchSettings {
  quick: boolean;
  /** --profile DIR: write steady-state CPU profiles of the measured servers during B4 there. */
  profileDir?: string;
  throughput: { connections: number; warmupMs: number; roundMs: number; rounds: number };
  /** B2 and B3 run `rounds` times, each on fresh processes. */
  latency: { requests: number; rounds: number };
  firstByte: { requests: number; proofStreams: number; proofChunkDelayMs: number };
  cpu: { concurrency: number; roundMs: number; rounds: number };
  manyStreams: { streams: number; chunkDelayMs: number; accounts: number };
  attachments: { sizeBytes: number };
}

export const SHORT_PROMPT = 'Say hi.';
/** The simulator's `long-answer` scenario: about 500 text frames, so B4 measures streaming rather than set-up. */
export const MANY_EVENTS_PROMPT = 'Say hi, at length. [[sim:long-answer]]';
export const LONG_PROMPT =
  'Please write a long and friendly answer about streaming gateways, back-pressure, 背压 和 流式传输, so that every reply has many events.';

export function benchSettings(quick: boolean, profileDir?: string): BenchSettings {
  return { ...baseSettings(quick), profileDir };
}

function baseSettings(quick: boolean): BenchSettings {
  return quick
    ? {
        quick,
        throughput: { connections: 50, warmupMs: 1_000, roundMs: 1_500, rounds: 2 },
        latency: { requests: 120, rounds: 1 },
        firstByte: { requests: 80, proofStreams: 3, proofChunkDelayMs: 20 },
        cpu: { concurrency: 16, roundMs: 1_000, rounds: 2 },
        manyStreams: { streams: 2_000, chunkDelayMs: 100, accounts: 40 },
        attachments: { sizeBytes: 100_000_000 },
      }
    : {
        quick,
        throughput: { connections: 50, warmupMs: 2_000, roundMs: 4_000, rounds: 3 },
        latency: { requests: 500, rounds: 3 },
        firstByte: { requests: 300, proofStreams: 10, proofChunkDelayMs: 20 },
        cpu: { concurrency: 16, roundMs: 2_500, rounds: 4 },
        manyStreams: { streams: 2_000, chunkDelayMs: 250, accounts: 40 },
        attachments: { sizeBytes: 100_000_000 },
      };
}
