/**
 * @module accounts/account-slots
 * Per-account concurrency (contract `ACCOUNT_MAX_CONCURRENCY`) and the bounded FIFO waiting room for requests
 * that find every usable account busy (`QUEUE_MAX`, `QUEUE_TIMEOUT_MS`). A freed slot goes straight to the
 * oldest waiter that can use that account, so a newcomer never overtakes a waiting request.
 */
import { RateLimitError } from '../errors.ts';

export interface AccountSlotsOptions {
  maxPerAccount: number;
  queueMax: number;
  queueTimeoutMs: number;
  /** Retry-After sent when the waiting room is full or a wait times out. */
  busyRetryAfterMs: number;
  /** Whether an account may be handed to a waiter now (not cooling, not invalid). */
  isUsable: (accountId: string) => boolean;
}

interface Waiter {
  candidateIds: ReadonlySet<string>;
  resolve: (accountId: string) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

export interface AccountSlots {
  inFlight(accountId: string): number;
  /** Takes a slot if the account has one free. */
  tryTake(accountId: string): boolean;
  /** Waits in line for a slot on any of `candidateIds`; resolves with the account whose slot is now ours. */
  wait(candidateIds: Iterable<string>, signal?: AbortSignal): Promise<string>;
  /** Frees a slot, handing it to the first waiter that can use the account. */
  release(accountId: string): void;
  /** An account became usable again (its cooldown ended): free slots go to the oldest waiters that can use it. */
  offerFreeSlots(accountId: string): void;
  /** Rejects waiters for which `errorFor` returns an error (e.g. all their accounts started cooling down). */
  rejectWaiters(errorFor: (candidateIds: ReadonlySet<string>) => Error | undefined): void;
  readonly waiting: number;
}

export function createAccountSlots(options: AccountSlotsOptions): AccountSlots {
  const counts = new Map<string, number>();
  const waiters: Waiter[] = [];
  const inFlight = (accountId: string): number => counts.get(accountId) ?? 0;

  function remove(waiter: Waiter): void {
    const index = waiters.indexOf(waiter);
    if (index >= 0) waiters.splice(index, 1);
    waiter.cleanup();
  }

  return {
    inFlight,
    get waiting() {
      return waiters.length;
    },
    tryTake(accountId) {
      if (inFlight(accountId) >= options.maxPerAccount) return false;
      counts.set(accountId, inFlight(accountId) + 1);
      return true;
    },
    wait(candidateIds, signal) {
      if (waiters.length >= options.queueMax) {
        return Promise.reject(
          new RateLimitError('rate_limited', 'Every Kimi account is busy and the waiting room is full; retry shortly.', {
            retryAfterMs: options.busyRetryAfterMs,
            blamesAccount: false,
          }),
        );
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<string>((resolve, reject) => {
        const onAbort = (): void => {
          remove(waiter);
          reject(signal?.reason);
        };
        const timer = setTimeout(() => {
          remove(waiter);
          reject(
            new RateLimitError('rate_limited', 'Timed out waiting for a free Kimi account; retry shortly.', {
              retryAfterMs: options.busyRetryAfterMs,
              blamesAccount: false,
            }),
          );
        }, options.queueTimeoutMs);
        const waiter: Waiter = {
          candidateIds: new Set(candidateIds),
          resolve,
          reject,
          cleanup: () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
          },
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
      });
    },
    release(accountId) {
      const waiter = options.isUsable(accountId) ? waiters.find((item) => item.candidateIds.has(accountId)) : undefined;
      if (waiter) {
        remove(waiter);
        waiter.resolve(accountId); // the slot passes on; the count does not change
        return;
      }
      const remaining = inFlight(accountId) - 1;
      if (remaining > 0) counts.set(accountId, remaining);
      else counts.delete(accountId);
    },
    offerFreeSlots(accountId) {
      while (inFlight(accountId) < options.maxPerAccount && options.isUsable(accountId)) {
        const waiter = waiters.find((item) => item.candidateIds.has(accountId));
        if (!waiter) return;
        remove(waiter);
        counts.set(accountId, inFlight(accountId) + 1);
        waiter.resolve(accountId);
      }
    },
    rejectWaiters(errorFor) {
      for (const waiter of [...waiters]) {
        const error = errorFor(waiter.candidateIds);
        if (!error) continue;
        remove(waiter);
        waiter.reject(error);
      }
    },
  };
}
