/**
 * @module simulator/scenarios
 * The named fault scenarios, which kinds of request each one affects, and the book that decides the scenario
 * of a request: prompt hook `[[sim:NAME]]` first, then the account's scenario, then the global one, then the
 * start-up default. A scenario set with `times` is used up only by requests it applies to.
 */
import { DRIFT_SCENARIOS } from './drift.ts';

/** Which request a scenario can change. Other requests ignore it (and do not use up its `times`). */
export type RequestKind = 'chat' | 'legacy-chat' | 'refresh' | 'upload';

const STREAMS: RequestKind[] = ['chat', 'legacy-chat'];
const CHAT: RequestKind[] = ['chat'];
const LEGACY: RequestKind[] = ['legacy-chat'];
const REFRESH: RequestKind[] = ['refresh'];
const UPLOAD: RequestKind[] = ['upload'];

/** Every scenario: the request kinds it applies to and a one-line description (README table mirrors this). */
export const SCENARIOS = {
  normal: { kinds: [...STREAMS, 'refresh', 'upload'], description: 'Faithful answers (default).' },
  slow: { kinds: STREAMS, description: '50 ms between streamed frames/events.' },
  'overload-free-user': { kinds: CHAT, description: '§3.14 d: chat, user echo, done, then end-stream resource_exhausted REASON_SERVER_OVERLOADED_FOR_FREE_USER; no text.' },
  'exception-mid-stream': { kinds: CHAT, description: '§3.14 d: partial text, then block.exception REASON_COMPLETION_OVERLOADED, COMPLETED, done, {}.' },
  'error-after-done': { kinds: CHAT, description: 'Full answer, done, then end-stream error `internal`.' },
  unauthenticated: { kinds: STREAMS, description: 'HTTP 401 (Connect unauthenticated / legacy auth.token.invalid).' },
  'unauthenticated-in-stream': { kinds: CHAT, description: 'HTTP 200 with only an end frame {"error":{"code":"unauthenticated"}}.' },
  'empty-stream': { kinds: CHAT, description: 'HTTP 200 with only the `{}` end frame.' },
  'degrade-notice': { kinds: CHAT, description: 'TYPE_MODEL_DEGRADE notification, then a normal answer.' },
  'split-frames': { kinds: STREAMS, description: 'Whole stream written in 1–7 byte writes with tiny pauses (frames and UTF-8 split everywhere).' },
  'http-429': { kinds: STREAMS, description: 'HTTP 429 with `Retry-After: 7`, plain-text body.' },
  'http-429-no-hint': { kinds: STREAMS, description: 'HTTP 429 without Retry-After.' },
  'http-503': { kinds: STREAMS, description: 'HTTP 503, HTML body (CDN-style).' },
  'http-500': { kinds: STREAMS, description: 'HTTP 500 with a Connect `internal` (or legacy) JSON body.' },
  'reset-before-first-byte': { kinds: STREAMS, description: 'Socket destroyed before any response byte.' },
  'reset-after-first-byte': { kinds: STREAMS, description: 'Socket destroyed after a few text frames/events.' },
  'stall-before-first-byte': { kinds: STREAMS, description: 'No headers ever; ends when the client disconnects or the simulator closes.' },
  'stall-between-chunks': { kinds: STREAMS, description: 'Some text frames, then silence until the client disconnects or the simulator closes.' },
  'heartbeats-only': { kinds: STREAMS, description: 'The opening frames/events, then only keep-alives (Connect heartbeats; legacy `: keep-alive` and ping) every 100 ms until the client disconnects.' },
  'text-then-heartbeats': { kinds: STREAMS, description: 'Three text pieces, then only keep-alives every 100 ms until the client disconnects.' },
  'malformed-frame': { kinds: CHAT, description: 'A few frames, then a frame header whose length exceeds the bytes that follow; body ends.' },
  'non-json-frame': { kinds: STREAMS, description: 'A few frames, then a data frame (or SSE event) that is not JSON, then the normal end.' },
  'unknown-op': { kinds: CHAT, description: 'An event with op "merge" and an unknown container, then a normal answer.' },
  'html-200': { kinds: STREAMS, description: 'HTTP 200 text/html page instead of a stream.' },
  'quota-exhausted': { kinds: CHAT, description: '§3.13/§9 D12: end-stream resource_exhausted "Monthly quota used up", debug.needUpgrade.' },
  paywall: { kinds: CHAT, description: '§3.12: end-stream resource_exhausted with debug.paywall; no text.' },
  'session-in-progress': { kinds: CHAT, description: '§3.12: end-stream resource_exhausted "session in progress".' },
  'refresh-fails': { kinds: REFRESH, description: 'Refresh endpoints answer 401 (invalid claims / auth.token.invalid).' },
  'slow-refresh': { kinds: REFRESH, description: 'Refresh answers after 300 ms (to test single-flight).' },
  'search-alt-markers': { kinds: CHAT, description: 'Citations in the U+1F6E0 form (§3.7, §10.5) instead of U+E3A3.' },
  'legacy-length': { kinds: LEGACY, description: '§2.5: half the answer, `length`, all_done; continue with segment_id + action "continue".' },
  'legacy-stream-pushing': { kinds: LEGACY, description: 'HTTP 400 {"error_type":"chat.user_stream_pushing"}.' },
  'legacy-error-mid-stream': { kinds: LEGACY, description: 'Partial cmpl, then SSE error openai.completion.stream.' },
  'legacy-overload': { kinds: LEGACY, description: '§9 D13: SSE error with "算力不够，请稍后再试" before any text.' },
  'legacy-token-too-long': { kinds: LEGACY, description: 'SSE error openai.completion.token_length_too_long.' },
  'upload-rejected': { kinds: UPLOAD, description: 'Upload answers HTTP 500 (Connect internal).' },
  'upload-forbidden': { kinds: UPLOAD, description: 'Upload answers HTTP 403 (Connect permission_denied).' },
  'parse-failed': { kinds: UPLOAD, description: 'The uploaded file parses to PROCESS_STATUS_FAILED (legacy: "failed").' },
  'parse-slow': { kinds: UPLOAD, description: 'The uploaded file takes 3 s to parse.' },
  'tools-malformed': { kinds: STREAMS, description: 'Issue 9: when tools are offered, the call carries broken JSON (tool-replies.ts).' },
  'tools-unknown-tool': { kinds: STREAMS, description: 'Issue 9: when tools are offered, it calls a tool that was not offered.' },
  'tools-ignored': { kinds: STREAMS, description: 'Issue 9: when tools are offered, it answers in prose and calls nothing.' },
  'long-answer': { kinds: STREAMS, description: 'The reply paragraph 40 times over (about 500 text frames/events): streams with many events (bench B4).' },
  ...DRIFT_SCENARIOS,
} as const satisfies Record<string, { kinds: readonly RequestKind[]; description: string }>;

export type ScenarioName = keyof typeof SCENARIOS;

export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export function isScenarioName(name: unknown): name is ScenarioName {
  return typeof name === 'string' && Object.hasOwn(SCENARIOS, name);
}

export function scenarioApplies(name: ScenarioName, kind: RequestKind): boolean {
  return (SCENARIOS[name].kinds as readonly RequestKind[]).includes(kind);
}

const HOOK_PATTERN = /\[\[sim:([^\]\s]+)\]\]/;

/** The scenario named by a `[[sim:NAME]]` hook in prompt text: a name, `unknown` for a typo, or undefined. */
export function scenarioFromPrompt(text: string): { name: ScenarioName } | { unknown: string } | undefined {
  const match = HOOK_PATTERN.exec(text);
  if (!match) return undefined;
  return isScenarioName(match[1]) ? { name: match[1] } : { unknown: match[1] };
}

interface ScenarioSlot {
  name: ScenarioName;
  /** Requests left; undefined = until replaced. */
  remaining: number | undefined;
}

/** Holds the global and per-account scenarios and hands one out per request. */
export class ScenarioBook {
  readonly #base: ScenarioName;
  #global: ScenarioSlot | undefined;
  readonly #perUser = new Map<string, ScenarioSlot>();

  constructor(base: ScenarioName) {
    this.#base = base;
  }

  set(name: ScenarioName, options: { userId?: string; times?: number } = {}): void {
    if (!isScenarioName(name)) throw new TypeError(`unknown simulator scenario: ${String(name)}`);
    const { userId, times } = options;
    if (times !== undefined && (!Number.isInteger(times) || times < 1)) throw new RangeError('times must be a positive integer');
    const slot: ScenarioSlot = { name, remaining: times };
    if (userId === undefined) this.#global = slot;
    else this.#perUser.set(userId, slot);
  }

  /** The scenario for one request of `kind`; uses up one `times` of the slot that supplied it. */
  take(kind: RequestKind, userId: string | undefined): ScenarioName {
    const userSlot = userId === undefined ? undefined : this.#perUser.get(userId);
    if (userSlot && scenarioApplies(userSlot.name, kind)) return this.#use(userSlot, () => this.#perUser.delete(userId!));
    if (this.#global && scenarioApplies(this.#global.name, kind)) return this.#use(this.#global, () => (this.#global = undefined));
    return scenarioApplies(this.#base, kind) ? this.#base : 'normal';
  }

  /** What is configured now (for the state endpoint). */
  describe(): { base: ScenarioName; global?: ScenarioSlot; perUser: Record<string, ScenarioSlot> } {
    return { base: this.#base, global: this.#global && { ...this.#global }, perUser: Object.fromEntries([...this.#perUser].map(([id, slot]) => [id, { ...slot }])) };
  }

  clear(): void {
    this.#global = undefined;
    this.#perUser.clear();
  }

  #use(slot: ScenarioSlot, drop: () => void): ScenarioName {
    if (slot.remaining !== undefined) {
      slot.remaining -= 1;
      if (slot.remaining <= 0) drop();
    }
    return slot.name;
  }
}
