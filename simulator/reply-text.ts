/**
 * @module simulator/reply-text
 * Deterministic answer, reasoning and search-source text derived from the request, so tests can compute what
 * a reply must contain. Every reply carries Chinese text and an emoji so UTF-8 handling is always exercised.
 * Citation markers follow spec §3.7 / §10.5 in either separator form.
 */

export interface ReplyFile {
  name: string;
  sizeBytes: number;
  sha256: string;
}

/** `e3a3`: U+E3A0 cite U+E3A3 ref… U+E3A8 (§3.14 c). `1f6e0`: U+1F6E0 form (§3.7). `none`: legacy, no markers. */
export type MarkerStyle = 'e3a3' | '1f6e0' | 'none';

export interface ReplyInput {
  userText: string;
  /** 1-based count of user messages in the chat, this one included. */
  turn: number;
  files?: ReplyFile[];
  search?: boolean;
  markerStyle?: MarkerStyle;
  /** How many times the opening paragraph is written (numbered from the second on). Default 1. */
  paragraphs?: number;
}

/** Paragraphs of the `long-answer` scenario. */
export const LONG_ANSWER_PARAGRAPHS = 40;

export interface SearchSourceSpec {
  id: string;
  title: string;
  url: string;
  siteName: string;
  snippet: string;
  publishTime: string;
  refIndex: string;
}

export interface SimulatedReply {
  /** The text exactly as streamed (with citation markers). */
  text: string;
  /** The same text with every citation marker removed. */
  plainText: string;
  /** Search sources in citation order (empty without search). */
  sources: SearchSourceSpec[];
}

const MARKER_PATTERN = /\uE3A0[^\uE3A8\u{1F3A8}]*(?:\uE3A8|\u{1F3A8})/gu;

/** Whitespace collapsed, first `maxChars` code points. */
export function collapseText(text: string, maxChars: number): string {
  return Array.from(text.replace(/\s+/g, ' ').trim()).slice(0, maxChars).join('');
}

export function searchQueryOf(userText: string): string {
  return collapseText(userText, 40);
}

/** Two or three sources, depending on the query's length parity. */
export function simulatedSearchSources(userText: string): SearchSourceSpec[] {
  const query = searchQueryOf(userText);
  const count = 2 + (Array.from(query).length % 2);
  return Array.from({ length: count }, (_unused, index) => ({
    id: String(index + 1),
    title: `模拟来源 ${index + 1}: ${query}`,
    url: `https://search.example.com/result/${index + 1}?q=${encodeURIComponent(query)}`,
    siteName: `Example Search ${index + 1}`,
    snippet: `Snippet ${index + 1} about ${query}`,
    publishTime: '2026-08-14T00:00:00Z',
    refIndex: `web_search:1#${index}`,
  }));
}

function citeMarker(refIndexes: string[], style: MarkerStyle): string {
  if (style === 'none') return '';
  if (style === 'e3a3') return `\uE3A0cite${refIndexes.map((ref) => `\uE3A3${ref}`).join('')}\uE3A8`;
  return refIndexes.map((ref) => `\uE3A0cite\u{1F6E0}${ref}:~:text=simulated span\u{1F6E0}\uE3A8`).join('');
}

function searchSentence(sources: SearchSourceSpec[], style: MarkerStyle): string {
  const article = style === '1f6e0' ? '\uE3A0article\u{1F6E0}web_search:1\u{1F3A8}' : '';
  const rest = sources.slice(1);
  return (
    `\n${article}搜索结果显示：${sources[0].siteName} 是第一个来源${citeMarker([sources[0].refIndex], style)}，` +
    `${rest.map((source) => source.siteName).join(' 与 ')} 也提到了${citeMarker(rest.map((source) => source.refIndex), style)}。`
  );
}

export function simulatedReply(input: ReplyInput): SimulatedReply {
  const style = input.markerStyle ?? 'e3a3';
  const paragraph = `Simulated reply to: "${collapseText(input.userText, 120)}" (turn ${input.turn}) 模拟回复，你好世界 🌏`;
  let text = paragraph;
  for (let index = 2; index <= (input.paragraphs ?? 1); index += 1) text += `\n${index}. ${paragraph}`;
  for (const file of input.files ?? []) {
    text += `\nFile: ${file.name} (${file.sizeBytes} bytes, sha256 ${file.sha256.slice(0, 12)})`;
  }
  const sources = input.search ? simulatedSearchSources(input.userText) : [];
  if (input.search) text += searchSentence(sources, style);
  return { text, plainText: stripCitationMarkers(text), sources };
}

export function stripCitationMarkers(text: string): string {
  return text.replace(MARKER_PATTERN, '');
}

export function simulatedThinkingText(userText: string, turn: number): string {
  return `The user wrote "${collapseText(userText, 40)}" (turn ${turn}). 我需要想一想 🤔 then answer plainly.`;
}

const PIECE_SIZES = [3, 7, 4, 10, 5, 8, 6, 9];

/**
 * Splits text into 3–10 code-point pieces (never inside a surrogate pair). When the text has a citation
 * marker, one cut is forced three code points into the first marker so a marker always spans two frames.
 */
export function splitIntoPieces(text: string): string[] {
  const points = Array.from(text);
  const markerStart = points.indexOf('\uE3A0');
  const forcedCut = markerStart >= 0 ? markerStart + 3 : -1;
  const pieces: string[] = [];
  let start = 0;
  let turn = 0;
  while (start < points.length) {
    let end = Math.min(points.length, start + PIECE_SIZES[turn++ % PIECE_SIZES.length]);
    if (forcedCut > start && forcedCut < end) end = forcedCut;
    pieces.push(points.slice(start, end).join(''));
    start = end;
  }
  return pieces;
}
