/**
 * @module metrics
 * The Prometheus registry and every named instrument behind `GET /metrics` (issue 6), plus the
 * upstream-drift counter of issue 10. A leaf: it imports only @prometheus-io/client and errors.ts.
 *
 * Label values that come from outside (model names sent by clients, names of unknown upstream
 * events) are capped per label so that a misbehaving client or a chatty upstream cannot grow the
 * registry without bound; past the cap they are counted under `other`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from '@prometheus-io/client';
import { isAbortError, isGatewayError } from './errors.ts';

export type AccountState = 'live' | 'cooling' | 'invalid' | 'unknown';
export const ACCOUNT_STATES: readonly AccountState[] = ['live', 'cooling', 'invalid', 'unknown'];

export type AccountStateCounts = Partial<Record<AccountState, number>>;
export type AccountStatesSource = () => AccountStateCounts | Promise<AccountStateCounts>;
export type QueueWaitingSource = () => number | Promise<number>;

export interface MetricsOptions {
  /** Read at each scrape to fill `accounts{state}`; may also be set later with setAccountStatesSource. */
  accountStates?: AccountStatesSource;
  /** Read at each scrape to fill `queue_waiting`; may also be set later with setQueueWaitingSource. */
  queueWaiting?: QueueWaitingSource;
  /** Node process metrics (CPU, memory, event loop). Default true; tests turn it off for speed. */
  includeProcessMetrics?: boolean;
  /** Distinct values kept per capped label before new ones become `other`. Default 100. */
  maxLabelValues?: number;
}

export interface RequestObservation {
  route: string;
  model: string;
  status: number;
  /** Omitted when no byte was sent (an error before the first byte still counts its duration). */
  timeToFirstByteSeconds?: number;
  durationSeconds: number;
}

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'model' | 'status'>;
  readonly timeToFirstByte: Histogram<'route'>;
  readonly requestDuration: Histogram<'route'>;
  readonly upstreamErrors: Counter<'kind' | 'dialect'>;
  readonly accounts: Gauge<'state'>;
  readonly tokenRefreshes: Counter<'result'>;
  readonly attachmentBytes: Counter<'kind'>;
  readonly upstreamUnknown: Counter<'kind' | 'name'>;
  readonly queueWaiting: Gauge;
  /** Counts one finished request in the counter and both histograms, with the model label capped. */
  recordRequest(observation: RequestObservation): void;
  /** Counts an upstream failure by its error code (`upstream_timeout`, `rate_limited`, ...). */
  recordUpstreamError(error: unknown, dialect: string): void;
  /** Counts one unknown upstream thing (event type, op, field, enum value) by kind and name. */
  recordUnknownUpstream(kind: string, name: string): void;
  /** `{ "kind:name": count }` for the status page's "upstream sent N unknown things". */
  unknownUpstreamCounts(): Promise<Record<string, number>>;
  setAccountStatesSource(source: AccountStatesSource): void;
  setQueueWaitingSource(source: QueueWaitingSource): void;
  render(): Promise<RenderedMetrics>;
}

// Time to first byte is dominated by Kimi's own think time; a thinking model can take a minute.
const FIRST_BYTE_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120];
// Whole answers: a short reply takes seconds, a long research answer many minutes.
const DURATION_BUCKETS_SECONDS = [0.25, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, 1800];
const MAX_LABEL_LENGTH = 80;
const OVERFLOW_LABEL = 'other';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.includeProcessMetrics ?? true) collectDefaultMetrics({ register: registry });

  let accountStatesSource = options.accountStates;
  let queueWaitingSource = options.queueWaiting;
  const modelLabels = createLabelCap(options.maxLabelValues ?? 100);
  const unknownNameLabels = createLabelCap(options.maxLabelValues ?? 100);

  const httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route, public model name and status code.',
    labelNames: ['route', 'model', 'status'] as const,
    registers,
  });
  const timeToFirstByte = new Histogram({
    name: 'http_time_to_first_byte_seconds',
    help: 'Seconds from request arrival to the first response byte.',
    labelNames: ['route'] as const,
    buckets: FIRST_BYTE_BUCKETS_SECONDS,
    registers,
  });
  const requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Seconds from request arrival to the end of the response (streams included).',
    labelNames: ['route'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers,
  });
  const upstreamErrors = new Counter({
    name: 'upstream_errors_total',
    help: 'Failures talking to Kimi, by error code and dialect.',
    labelNames: ['kind', 'dialect'] as const,
    registers,
  });
  const accounts = new Gauge({
    name: 'accounts',
    help: 'Accounts in the pool by state (live, cooling, invalid, unknown).',
    labelNames: ['state'] as const,
    registers,
    // A regular function: the client calls collect with `this` bound to the gauge.
    async collect() {
      if (!accountStatesSource) return;
      const counts = await accountStatesSource();
      // Every state is always emitted, so a dashboard sees 0 rather than a vanished series.
      for (const state of ACCOUNT_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  const tokenRefreshes = new Counter({
    name: 'token_refreshes_total',
    help: 'Kimi token refreshes by result (ok, rejected, error).',
    labelNames: ['result'] as const,
    registers,
  });
  const attachmentBytes = new Counter({
    name: 'attachment_bytes_total',
    help: 'Attachment bytes fetched and uploaded, by kind (image, file).',
    labelNames: ['kind'] as const,
    registers,
  });
  const upstreamUnknown = new Counter({
    name: 'upstream_unknown_total',
    help: 'Things Kimi sent that this version does not know (event types, ops, fields, enum values).',
    labelNames: ['kind', 'name'] as const,
    registers,
  });
  const queueWaiting = new Gauge({
    name: 'queue_waiting',
    help: 'Requests waiting for a free account.',
    registers,
    async collect() {
      if (queueWaitingSource) this.set(await queueWaitingSource());
    },
  });

  return {
    registry,
    httpRequests,
    timeToFirstByte,
    requestDuration,
    upstreamErrors,
    accounts,
    tokenRefreshes,
    attachmentBytes,
    upstreamUnknown,
    queueWaiting,
    recordRequest(observation) {
      const route = cleanLabel(observation.route);
      const model = modelLabels(observation.model);
      httpRequests.inc({ route, model, status: String(observation.status) });
      if (observation.timeToFirstByteSeconds !== undefined) {
        timeToFirstByte.observe({ route }, observation.timeToFirstByteSeconds);
      }
      requestDuration.observe({ route }, observation.durationSeconds);
    },
    recordUpstreamError(error, dialect) {
      const kind = upstreamErrorKind(error);
      if (kind !== undefined) upstreamErrors.inc({ kind, dialect: cleanLabel(dialect) });
    },
    recordUnknownUpstream(kind, name) {
      upstreamUnknown.inc({ kind: cleanLabel(kind), name: unknownNameLabels(name) });
    },
    async unknownUpstreamCounts() {
      const snapshot = await upstreamUnknown.get();
      const counts: Record<string, number> = {};
      for (const sample of snapshot.values) {
        // The client's label type distributes over the label union; read it as a plain record.
        const labels = sample.labels as Record<string, string | number | undefined>;
        counts[`${labels.kind}:${labels.name}`] = sample.value;
      }
      return counts;
    },
    setAccountStatesSource(source) {
      accountStatesSource = source;
    },
    setQueueWaitingSource(source) {
      queueWaitingSource = source;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/**
 * The `kind` label for an upstream failure: the GatewayError code, `transport` for anything else,
 * and undefined for a client abort (the client leaving is not an upstream failure).
 */
export function upstreamErrorKind(error: unknown): string | undefined {
  if (isAbortError(error)) return undefined;
  if (isGatewayError(error)) return error.code;
  return 'transport';
}

/** Returns a function that passes the first `limit` distinct values through and maps the rest to `other`. */
export function createLabelCap(limit: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    const label = cleanLabel(value);
    if (seen.has(label)) return label;
    if (seen.size >= limit) return OVERFLOW_LABEL;
    seen.add(label);
    return label;
  };
}

function cleanLabel(value: string): string {
  const trimmed = value.trim();
  if (trimmed === '') return 'none';
  return trimmed.length > MAX_LABEL_LENGTH ? trimmed.slice(0, MAX_LABEL_LENGTH) : trimmed;
}
