/**
 * @module chat/held-abort
 * A client's abort, held back for a bounded time. A new chat only gets its id in the first frames of Kimi's answer
 * (spec §3.5, §10.3): a client that leaves before them would leave that chat in the account for good, since
 * there is no id to delete. The upstream call therefore outlives the client until the chat is known, at most
 * `holdMs`; from then on an abort passes through at once.
 */

export interface HeldAbort {
  /** Aborted once the source aborted and the abort is no longer held. */
  readonly signal: AbortSignal;
  /** The chat is known: a pending abort goes through now, later ones at once. */
  release(): void;
  /** Drops the listener and the timer (the call ended). */
  dispose(): void;
}

export function holdAbort(source: AbortSignal, holdMs: number, isReleased = false): HeldAbort {
  const controller = new AbortController();
  let released = isReleased;
  let timer: NodeJS.Timeout | undefined;
  const abort = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!controller.signal.aborted) controller.abort(source.reason);
  };
  const onSourceAbort = () => {
    if (released) return abort();
    timer ??= setTimeout(abort, holdMs);
  };
  // Gone before anything was sent: nothing was created upstream, so nothing is worth waiting for.
  if (source.aborted) controller.abort(source.reason);
  else source.addEventListener('abort', onSourceAbort, { once: true });
  return {
    signal: controller.signal,
    release() {
      released = true;
      if (source.aborted) abort();
    },
    dispose() {
      source.removeEventListener('abort', onSourceAbort);
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
