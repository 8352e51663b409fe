/**
 * @module upstream/connect/connect-sources
 * The citation table of one reply: search results from `message.refs.searchChunks`,
 * `block.tool.contents[].searchResult` and the older `block.search.webPages` (protocol spec §3.6, §3.7),
 * numbered 1..n in order of first appearance and de-duplicated by refIndex and URL.
 */
import type { SearchSource } from '../dialect.ts';

export interface SourceTable {
  readonly count: number;
  /** `ref:<refIndex>` and `url:<url>` → source number. */
  readonly numbers: Readonly<Record<string, number>>;
}

/** One search result as it appears in any of the three places, flattened. */
export interface SearchItem {
  refIndex?: string;
  title?: string;
  url?: string;
  siteName?: string;
  snippet?: string;
}

export const emptySourceTable: SourceTable = { count: 0, numbers: {} };

export function sourceNumberForRef(table: SourceTable, refIndex: string): number | undefined {
  return table.numbers[`ref:${refIndex}`];
}

/** Adds items; returns the new table and a source for each item never seen before. */
export function addSources(table: SourceTable, items: SearchItem[]): { table: SourceTable; added: SearchSource[] } {
  if (items.length === 0) return { table, added: [] };
  const numbers: Record<string, number> = { ...table.numbers };
  let count = table.count;
  const added: SearchSource[] = [];
  for (const item of items) {
    const keys = [item.refIndex && `ref:${item.refIndex}`, item.url && `url:${item.url}`].filter((key) => !!key) as string[];
    if (keys.length === 0) continue;
    const known = keys.map((key) => numbers[key]).find((number) => number !== undefined);
    const number = known ?? ++count;
    for (const key of keys) numbers[key] ??= number;
    if (known !== undefined) continue;
    added.push(toSource(number, item));
  }
  return { table: { count, numbers }, added };
}

function toSource(index: number, item: SearchItem): SearchSource {
  const source: SearchSource = { index, title: item.title || item.siteName || item.url || `Source ${index}`, url: item.url ?? '' };
  if (item.siteName) source.siteName = item.siteName;
  if (item.snippet) source.snippet = item.snippet;
  return source;
}
