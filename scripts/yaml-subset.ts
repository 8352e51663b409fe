/**
 * @module scripts/yaml-subset
 * A strict parser for the YAML subset our deployment files use (compose.yaml, render.yaml,
 * deploy/kubernetes.yaml), so tests can check their structure without a YAML dependency.
 *
 * Supported: `---` documents, block mappings and sequences (indented or at the key's indent),
 * `- key: value` items, plain / single- / double-quoted scalars, flow `[...]` and `{...}`, `|` and
 * `>` block scalars, comments. Anything else (tabs, anchors, aliases, tags, duplicate keys, stray
 * indentation) throws with the line number: a file this parser refuses is one to simplify.
 */

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line { indent: number; text: string; number: number }

export class YamlSubsetError extends Error {}

export function parseYamlDocuments(source: string): YamlValue[] {
  const documents: Line[][] = [[]];
  source.split(/\r?\n/).forEach((raw, index) => {
    if (/^\t| \t/.test(raw.match(/^\s*/)?.[0] ?? '')) fail(index + 1, 'tab in indentation');
    const text = stripComment(raw).trimEnd();
    if (/^---\s*$/.test(text)) return void documents.push([]);
    if (text.trim() === '') return;
    documents[documents.length - 1].push({ indent: text.length - text.trimStart().length, text: text.trim(), number: index + 1 });
  });
  return documents.filter((lines) => lines.length > 0).map((lines) => {
    const cursor = { lines, position: 0 };
    const value = parseBlock(cursor, lines[0].indent);
    if (cursor.position < lines.length) fail(lines[cursor.position].number, 'unexpected indentation');
    return value;
  });
}

interface Cursor { lines: Line[]; position: number }

function fail(line: number, message: string): never {
  throw new YamlSubsetError(`line ${line}: ${message}`);
}

const isSequenceItem = (text: string): boolean => text === '-' || text.startsWith('- ');

function parseBlock(cursor: Cursor, indent: number): YamlValue {
  const line = cursor.lines[cursor.position];
  return isSequenceItem(line.text) ? parseSequence(cursor, indent) : parseMapping(cursor, indent);
}

function parseSequence(cursor: Cursor, indent: number): YamlValue[] {
  const items: YamlValue[] = [];
  for (let line = cursor.lines[cursor.position]; line && line.indent === indent && isSequenceItem(line.text);
    line = cursor.lines[cursor.position]) {
    const rest = line.text.slice(1).trimStart();
    if (rest === '') {
      cursor.position += 1;
      items.push(parseNested(cursor, indent, line.number));
    } else if (isSequenceItem(rest) || splitKey(rest) !== undefined) {
      // `- key: value` or `- - item`: the item is a block that starts where `rest` starts.
      const inner = { indent: indent + (line.text.length - rest.length), text: rest, number: line.number };
      cursor.lines[cursor.position] = inner;
      items.push(parseBlock(cursor, inner.indent));
    } else {
      cursor.position += 1;
      items.push(parseInline(rest, line.number));
    }
  }
  return items;
}

function parseMapping(cursor: Cursor, indent: number): { [key: string]: YamlValue } {
  const mapping: { [key: string]: YamlValue } = {};
  for (let line = cursor.lines[cursor.position]; line && line.indent === indent && !isSequenceItem(line.text);
    line = cursor.lines[cursor.position]) {
    const split = splitKey(line.text);
    if (!split) fail(line.number, `expected "key: value", got "${line.text}"`);
    const key = String(parseInline(split.key, line.number));
    if (Object.hasOwn(mapping, key)) fail(line.number, `duplicate key "${key}"`);
    cursor.position += 1;
    if (split.value === '') {
      const next = cursor.lines[cursor.position];
      // A sequence may sit at the key's own indent (`key:\n- item`), as compose files often do.
      const sequenceAtSameIndent = next && next.indent === indent && isSequenceItem(next.text);
      mapping[key] = sequenceAtSameIndent ? parseSequence(cursor, indent) : parseNested(cursor, indent, line.number);
    } else if (/^[|>][+-]?$/.test(split.value)) {
      mapping[key] = parseBlockScalar(cursor, indent, split.value);
    } else {
      mapping[key] = parseInline(split.value, line.number);
    }
  }
  const stray = cursor.lines[cursor.position];
  if (stray && stray.indent > indent) fail(stray.number, 'unexpected indentation');
  return mapping;
}

/** The value on the following, deeper-indented lines, or null when there are none. */
function parseNested(cursor: Cursor, parentIndent: number, lineNumber: number): YamlValue {
  const next = cursor.lines[cursor.position];
  if (!next || next.indent <= parentIndent) return null;
  if (lineNumber >= next.number) fail(next.number, 'bad structure');
  return parseBlock(cursor, next.indent);
}

function parseBlockScalar(cursor: Cursor, parentIndent: number, header: string): string {
  const parts: string[] = [];
  while (cursor.lines[cursor.position] && cursor.lines[cursor.position].indent > parentIndent) {
    parts.push(cursor.lines[cursor.position].text);
    cursor.position += 1;
  }
  const body = parts.join(header.startsWith('|') ? '\n' : ' ');
  return header.endsWith('-') ? body : `${body}\n`;
}

/** Splits `key: value` at the first `: ` (or a final `:`) outside quotes and brackets. */
function splitKey(text: string): { key: string; value: string } | undefined {
  let quote = '';
  let depth = 0;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (quote) {
      if (char === quote) quote = '';
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === '[' || char === '{') {
      depth += 1;
    } else if (char === ']' || char === '}') {
      depth -= 1;
    } else if (char === ':' && depth === 0 && (index === text.length - 1 || text[index + 1] === ' ')) {
      return { key: text.slice(0, index).trim(), value: text.slice(index + 1).trim() };
    }
  }
  return undefined;
}

/** Removes a `#` comment that starts the line or follows whitespace, outside quotes. */
function stripComment(line: string): string {
  let quote = '';
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index];
    if (quote) {
      if (char === quote) quote = '';
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === '#' && (index === 0 || /\s/.test(line[index - 1]))) {
      return line.slice(0, index);
    }
  }
  return line;
}

function parseInline(text: string, lineNumber: number): YamlValue {
  const state = { text, position: 0, lineNumber };
  const value = parseFlowValue(state, false);
  if (state.text.slice(state.position).trim() !== '') fail(lineNumber, `unexpected "${state.text.slice(state.position)}"`);
  return value;
}

interface FlowState { text: string; position: number; lineNumber: number }

function parseFlowValue(state: FlowState, insideFlow: boolean, isFlowKey = false): YamlValue {
  while (state.text[state.position] === ' ') state.position += 1;
  const char = state.text[state.position];
  if (char === '&' || char === '*' || char === '!') fail(state.lineNumber, 'anchors, aliases and tags are not supported');
  if (char === '[' || char === '{') return parseFlowCollection(state, char);
  if (char === '"') {
    const match = /^"(?:[^"\\]|\\.)*"/.exec(state.text.slice(state.position));
    if (!match) fail(state.lineNumber, 'unterminated double-quoted string');
    state.position += match[0].length;
    return JSON.parse(match[0]) as string;
  }
  if (char === "'") {
    const match = /^'(?:[^']|'')*'/.exec(state.text.slice(state.position));
    if (!match) fail(state.lineNumber, 'unterminated single-quoted string');
    state.position += match[0].length;
    return match[0].slice(1, -1).replaceAll("''", "'");
  }
  const rest = state.text.slice(state.position);
  const plain = isFlowKey ? /^[^,\]}:]*/.exec(rest)![0] : insideFlow ? /^[^,\]}]*/.exec(rest)![0] : rest;
  state.position += plain.length;
  return resolvePlain(plain.trim());
}

function parseFlowCollection(state: FlowState, open: '[' | '{'): YamlValue {
  const close = open === '[' ? ']' : '}';
  const list: YamlValue[] = [];
  const map: { [key: string]: YamlValue } = {};
  state.position += 1;
  for (;;) {
    while (state.text[state.position] === ' ') state.position += 1;
    if (state.text[state.position] === close) break;
    if (open === '[') {
      list.push(parseFlowValue(state, true));
    } else {
      const key = String(parseFlowValue(state, true, true));
      const colon = /^\s*:/.exec(state.text.slice(state.position));
      if (!colon) fail(state.lineNumber, 'expected ":" in flow mapping');
      state.position += colon[0].length;
      map[key] = parseFlowValue(state, true);
    }
    while (state.text[state.position] === ' ') state.position += 1;
    const separator = state.text[state.position];
    if (separator === ',') state.position += 1;
    else if (separator !== close) fail(state.lineNumber, `expected "," or "${close}"`);
  }
  state.position += 1;
  return open === '[' ? list : map;
}

/** YAML 1.2 core schema for plain scalars: null, booleans, numbers; everything else is a string. */
function resolvePlain(text: string): YamlValue {
  if (text === '' || text === '~' || text === 'null') return null;
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^[-+]?\d+$/.test(text)) return Number.parseInt(text, 10);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(text)) return Number.parseFloat(text);
  return text;
}
