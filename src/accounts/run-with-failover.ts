/**
 * @module accounts/run-with-failover
 * The retry policy around one upstream call (issue 5): on an auth refusal refresh once and retry the same
 * account (§3.4 reactive refresh); on a limit, overload or retryable failure report it (the pool cools the
 * account down) and move to the next account, at most `maxAttempts` times within `attemptBudgetMs`. Only the
 * part of a request before its first byte reaches the client belongs inside `attempt`.
 */
import { AuthenticationError, GatewayError, RateLimitError, isAbortError } from '../errors.ts';
import type { Lease, LeaseRequest } from './account-pool-types.ts';

export interface FailoverPolicy {
  maxAttempts: number;
  attemptBudgetMs: number;
  clock: () => number;
}

export type LeaseFunction = (request: LeaseRequest) => Promise<Lease>;

/** Error code `lease` uses when every candidate has been tried (then the last upstream error is the answer). */
export const NO_ACCOUNT_LEFT = 'no_account_left';

/** Whether another account may succeed where this one failed. */
export function shouldTryAnotherAccount(error: unknown): boolean {
  if (error instanceof RateLimitError || error instanceof AuthenticationError) return true;
  return error instanceof GatewayError && (error.isRetryable || error.blamesAccount);
}

/**
 * Leases an account and runs `attempt` on it, failing over as described above. On success the lease is handed
 * to the caller, who must `release()` it when the response has ended (and report a later failure first).
 */
export async function runWithFailover<T>(
  lease: LeaseFunction,
  policy: FailoverPolicy,
  request: LeaseRequest,
  attempt: (lease: Lease, attemptNumber: number) => Promise<T>,
): Promise<{ value: T; lease: Lease }> {
  const startedAt = policy.clock();
  const tried = new Set(request.exclude ?? []);
  let lastError: unknown;
  for (let attemptNumber = 1; attemptNumber <= policy.maxAttempts; attemptNumber += 1) {
    if (attemptNumber > 1 && policy.clock() - startedAt >= policy.attemptBudgetMs) break;
    let current: Lease;
    try {
      current = await lease({ ...request, exclude: tried });
    } catch (error) {
      if (lastError !== undefined && error instanceof GatewayError && error.code === NO_ACCOUNT_LEFT) throw lastError;
      throw error;
    }
    try {
      const value = await attemptWithOneRefresh(current, attemptNumber, attempt, request.signal);
      current.reportSuccess();
      return { value, lease: current };
    } catch (error) {
      await current.reportFailure(error);
      current.release();
      if (isAbortError(error) || request.signal?.aborted || !shouldTryAnotherAccount(error)) throw error;
      lastError = error;
      tried.add(current.account.id);
    }
  }
  throw lastError;
}

async function attemptWithOneRefresh<T>(
  lease: Lease,
  attemptNumber: number,
  attempt: (lease: Lease, attemptNumber: number) => Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  try {
    return await attempt(lease, attemptNumber);
  } catch (error) {
    if (!(error instanceof AuthenticationError) || error.code !== 'invalid_token') throw error;
    await lease.refreshAfterAuthFailure(signal); // throws (account marked invalid) when the refresh is refused
    return await attempt(lease, attemptNumber);
  }
}
