/**
 * @module chat/tools/block-scanner
 * An incremental scanner that finds delimited blocks (`OPEN header HEADER_END body CLOSE`) in streamed text.
 * Text that cannot be the start of a block is released at once; only a suffix that may still grow into an
 * opener (optionally preceded by a code-fence line, which models like to wrap calls in) is held back, so the
 * hold-back is bounded by the opener's length plus one fence line. Grammars (tool-grammar.ts) supply the
 * delimiters and decide what a finished block means.
 */

export type ScannedToken =
  | { type: 'text'; text: string }
  /** A complete block; `raw` is the exact text it replaced (for logs and repair prompts, never for clients). */
  | { type: 'block'; header: string; body: string; raw: string }
  /** Something that began as a block but cannot be one: too long, or cut off by the end of the answer. */
  | { type: 'broken-block'; reason: string; raw: string };

export interface BlockSyntax {
  /** Literal opener, e.g. `<tool_call`. */
  open: string;
  /** True when the character right after the opener continues a block (else the opener was ordinary text). */
  isOpenBoundary(character: string): boolean;
  headerEnd: string;
  close: string;
  maxHeaderChars: number;
  maxBodyChars: number;
}

export interface BlockScanner {
  push(text: string): ScannedToken[];
  /** The answer ended: flush held text, report an unfinished block. */
  end(): ScannedToken[];
}

/** A code-fence line right before an opener (```xml, ```json, ```) is dropped together with its closing fence. */
const FENCE_LINE_BEFORE_OPEN = /```[\w-]{0,20}[ \t]*\r?\n[ \t]*$/;
/** A fence line still being written (or complete) at the end of the buffer. */
const PARTIAL_FENCE_LINE = /^```[\w-]{0,20}[ \t]*(\r?\n[ \t]*)?$/;
const FENCE_MAX_CHARS = 30;

type State = 'text' | 'header' | 'body' | 'after-block' | 'discarding';

export function createBlockScanner(syntax: BlockSyntax): BlockScanner {
  let state: State = 'text';
  let buffer = '';
  let header = '';
  let raw = '';
  /** How much of the body buffer has been searched for the closer (avoids quadratic rescans). */
  let searchedChars = 0;
  /** The current block was wrapped in a code fence whose closing line is still to be dropped. */
  let isFenced = false;
  /** Code fences in the released text; odd means the client is inside a code block right now. */
  let releasedFences = 0;
  let tokens: ScannedToken[] = [];

  function scan(isFinal: boolean): ScannedToken[] {
    tokens = [];
    let hasProgressed = true;
    while (hasProgressed) {
      if (state === 'text') hasProgressed = scanText(isFinal);
      else if (state === 'after-block') hasProgressed = scanAfterBlock(isFinal);
      else if (state === 'header') hasProgressed = scanHeader();
      else if (state === 'body') hasProgressed = scanBody();
      else hasProgressed = false;
    }
    return tokens;
  }

  function scanText(isFinal: boolean): boolean {
    for (let from = 0; ; ) {
      const at = buffer.indexOf(syntax.open, from);
      if (at === -1) break;
      const next = buffer[at + syntax.open.length];
      if (next === undefined && !isFinal) {
        release(textEndBefore(at, false));
        return false;
      }
      if (next !== undefined && syntax.isOpenBoundary(next)) {
        const textEnd = textEndBefore(at, true);
        release(textEnd);
        raw = buffer.slice(0, at - textEnd + syntax.open.length);
        buffer = buffer.slice(at - textEnd + syntax.open.length);
        header = '';
        state = 'header';
        return true;
      }
      from = at + 1;
    }
    release(isFinal ? buffer.length : heldSuffixStart());
    return false;
  }

  /** Where released text ends when an opener starts at `at`: before a wrapping fence line, if there is one. */
  function textEndBefore(at: number, isBlock: boolean): number {
    const windowStart = Math.max(0, at - FENCE_MAX_CHARS);
    const fence = FENCE_LINE_BEFORE_OPEN.exec(buffer.slice(windowStart, at));
    // A fence is a wrapper only when it would open a code block, not close the client's own.
    const isWrapper = fence !== null && (releasedFences + countFences(buffer.slice(0, at - fence[0].length))) % 2 === 0;
    if (isBlock && isWrapper) isFenced = true;
    return isWrapper ? at - fence[0].length : at;
  }

  /** Where the text that might still become `[fence line] opener` begins (buffer.length when nothing is held). */
  function heldSuffixStart(): number {
    const openerPrefix = longestSuffixThatPrefixes(buffer, syntax.open);
    const beforeOpener = buffer.length - openerPrefix;
    const fenceStart = buffer.lastIndexOf('```', beforeOpener);
    if (fenceStart !== -1 && beforeOpener - fenceStart <= FENCE_MAX_CHARS && PARTIAL_FENCE_LINE.test(buffer.slice(fenceStart, beforeOpener))) {
      return fenceStart;
    }
    const backticks = openerPrefix === 0 ? /`{1,2}$/.exec(buffer) : null;
    return backticks ? buffer.length - backticks[0].length : beforeOpener;
  }

  function release(upTo: number): void {
    const text = buffer.slice(0, upTo);
    buffer = buffer.slice(upTo);
    if (!text) return;
    releasedFences += countFences(text);
    const last = tokens.at(-1);
    if (last?.type === 'text') last.text += text;
    else tokens.push({ type: 'text', text });
  }

  function scanHeader(): boolean {
    const at = buffer.indexOf(syntax.headerEnd);
    if (at === -1) {
      if (buffer.length > syntax.maxHeaderChars) breakBlock(`the opening ${syntax.open} tag is longer than ${syntax.maxHeaderChars} characters`);
      return false;
    }
    header = buffer.slice(0, at);
    raw += buffer.slice(0, at + syntax.headerEnd.length);
    buffer = buffer.slice(at + syntax.headerEnd.length);
    searchedChars = 0;
    state = 'body';
    return true;
  }

  function scanBody(): boolean {
    const at = buffer.indexOf(syntax.close, Math.max(0, searchedChars - syntax.close.length + 1));
    if (at === -1) {
      searchedChars = buffer.length;
      if (buffer.length > syntax.maxBodyChars) breakBlock(`the call's arguments are longer than ${syntax.maxBodyChars} characters`);
      return false;
    }
    raw += buffer.slice(0, at + syntax.close.length);
    tokens.push({ type: 'block', header, body: buffer.slice(0, at), raw });
    buffer = buffer.slice(at + syntax.close.length);
    raw = '';
    state = 'after-block';
    return true;
  }

  /** After a block: whitespace is held and dropped; so is the wrapping fence's end. */
  function scanAfterBlock(isFinal: boolean): boolean {
    const rest = buffer.trimStart();
    if (isFenced && rest.startsWith('```')) {
      buffer = rest.slice(3);
      isFenced = false;
      return true;
    }
    if (rest.startsWith(syntax.open) && rest.length > syntax.open.length && syntax.isOpenBoundary(rest[syntax.open.length])) {
      buffer = rest;
      state = 'text';
      return true;
    }
    const mayStillMatch = rest === '' || (isFenced && '```'.startsWith(rest)) || syntax.open.startsWith(rest) || rest === syntax.open;
    if (mayStillMatch && !isFinal) return false;
    // Whitespace between a block and the text after it is layout, not content.
    buffer = rest;
    isFenced = false;
    state = 'text';
    return true;
  }

  function breakBlock(reason: string): void {
    // The rest of the answer belongs to the broken block; it must not leak out as text.
    tokens.push({ type: 'broken-block', reason, raw: raw + buffer });
    raw = '';
    buffer = '';
    state = 'discarding';
  }

  return {
    push(text) {
      if (state === 'discarding') return [];
      buffer += text;
      return scan(false);
    },
    end() {
      if (state === 'discarding') return [];
      const found = scan(true);
      if (state === 'header' || state === 'body') {
        found.push({ type: 'broken-block', reason: `the answer ended inside a ${syntax.open} block (no ${syntax.close})`, raw: raw + buffer });
        buffer = '';
        state = 'discarding';
      }
      return found;
    },
  };
}

function countFences(text: string): number {
  return text.split('```').length - 1;
}

/** Length of the longest suffix of `text` that is a proper prefix of `pattern`. */
export function longestSuffixThatPrefixes(text: string, pattern: string): number {
  const limit = Math.min(text.length, pattern.length - 1);
  for (let length = limit; length > 0; length -= 1) {
    if (text.endsWith(pattern.slice(0, length))) return length;
  }
  return 0;
}
