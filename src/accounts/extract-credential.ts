/**
 * @module accounts/extract-credential
 * Picks the Kimi credential out of whatever a user pastes (issue 10): a bare token, a `kimi-auth`
 * cookie, the browser's localStorage JSON, or a whole "Copy as cURL" command. A refresh token is
 * preferred, since access JWTs live 15 minutes (protocol spec §9 D2). Pure; never logs.
 */
import { InvalidRequestError } from '../errors.ts';
import { decodeJwtClaims, expiresAtMs } from '../jwt.ts';

export type CredentialSource = 'token' | 'cookie' | 'local-storage' | 'curl';

export interface ExtractedCredential {
  token: string;
  /** What the JWT says it is; `unknown` for opaque strings. */
  kind: 'refresh' | 'access' | 'unknown';
  source: CredentialSource;
  warnings: string[];
}

interface Candidate {
  token: string;
  kind: ExtractedCredential['kind'];
}

export function extractCredential(input: string, now: number = Date.now()): ExtractedCredential {
  const text = input.trim();
  if (!text) throw new InvalidRequestError('Nothing to import: paste a token, a kimi-auth cookie, localStorage JSON or a cURL command.');
  const { source, candidates } = findCandidates(text);
  if (candidates.length === 0) {
    throw new InvalidRequestError(`No Kimi token found in the pasted ${describe(source)}.`);
  }
  const chosen = candidates.find((candidate) => candidate.kind === 'refresh') ?? candidates[0];
  const warnings: string[] = [];
  if (chosen.kind === 'access') {
    const expiresAt = expiresAtMs(decodeJwtClaims(chosen.token));
    const minutes = expiresAt ? Math.round((expiresAt - now) / 60_000) : undefined;
    warnings.push(
      `This is an access token${minutes !== undefined ? ` that expires in ${minutes} minute(s)` : ''}; it cannot be renewed. ` +
        'Paste the refresh_token from localStorage for an account that keeps working.',
    );
  }
  return { token: chosen.token, kind: chosen.kind, source, warnings };
}

function findCandidates(text: string): { source: CredentialSource; candidates: Candidate[] } {
  if (/^curl\s/i.test(text)) return { source: 'curl', candidates: fromCurl(text) };
  if (text.startsWith('{')) return { source: 'local-storage', candidates: fromJson(text) };
  if (/(^|;\s*)kimi-auth=/.test(text)) return { source: 'cookie', candidates: fromCookieHeader(text) };
  const bare = unquote(text.replace(/^Bearer\s+/i, ''));
  if (/\s/.test(bare)) return { source: 'token', candidates: [] };
  return { source: 'token', candidates: [classify(bare)] };
}

function fromCurl(command: string): Candidate[] {
  const found: Candidate[] = [];
  const words = shellWords(command);
  for (let index = 0; index < words.length; index += 1) {
    const word = words[index];
    const next = words[index + 1] ?? '';
    if (word === '-H' || word === '--header') {
      const [name, ...rest] = next.split(':');
      const value = rest.join(':').trim();
      if (/^authorization$/i.test(name.trim())) found.push(classify(value.replace(/^Bearer\s+/i, '')));
      if (/^cookie$/i.test(name.trim())) found.push(...fromCookieHeader(value));
    }
    if (word === '-b' || word === '--cookie') found.push(...fromCookieHeader(next));
    if (/^--data(-raw|-binary|-ascii)?$/.test(word) || word === '-d') {
      if (next.trim().startsWith('{')) found.push(...fromJson(next));
    }
  }
  return dedupe(found);
}

function fromJson(text: string): Candidate[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  const found: Candidate[] = [];
  visit(value, (key, item) => {
    const normalised = key.toLowerCase().replace(/[^a-z]/g, '');
    if (normalised === 'refreshtoken' || normalised === 'accesstoken' || normalised === 'kimiauth' || normalised === 'token') {
      const token = tokenText(item);
      if (token) found.push(classify(token));
    }
  });
  return dedupe(found);
}

function fromCookieHeader(header: string): Candidate[] {
  const match = /(?:^|;\s*)kimi-auth=([^;\s]+)/.exec(header);
  return match ? [classify(decodeCookieValue(match[1]))] : [];
}

/** Cookie values may be percent-encoded; a stray `%` is left as it is rather than failing the whole paste. */
function decodeCookieValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * One token as typed into a header or a setting (`Authorization: Bearer`, KIMI_TOKENS): a `Bearer ` prefix,
 * surrounding quotes and a `kimi-auth=<value>; …` cookie wrapper are removed, as `extractCredential` does for a
 * paste, so the same strings work everywhere. Anything else is returned as it is, for the caller to judge.
 */
export function unwrapToken(text: string): string {
  // A trailing `;` is what is left of a copied cookie or header line.
  const bare = unquote(text.trim().replace(/^Bearer\s+/i, '').trim()).trim().replace(/;+$/, '');
  if (!/(^|;\s*)kimi-auth=/.test(bare)) return bare;
  return fromCookieHeader(bare)[0]?.token ?? bare;
}

/** localStorage values are sometimes JSON-encoded strings, or (legacy) arrays of JWT parts to join with '.'. */
function tokenText(item: unknown): string | undefined {
  if (Array.isArray(item) && item.every((part) => typeof part === 'string')) return item.join('.');
  if (typeof item !== 'string') return undefined;
  const inner = item.trim();
  if (inner.startsWith('"') || inner.startsWith('[')) {
    try {
      return tokenText(JSON.parse(inner));
    } catch {
      return undefined;
    }
  }
  return inner || undefined;
}

function classify(token: string): Candidate {
  const clean = unquote(token.trim());
  const type = decodeJwtClaims(clean)?.typ;
  return { token: clean, kind: type === 'refresh' ? 'refresh' : type === 'access' ? 'access' : 'unknown' };
}

function visit(value: unknown, onEntry: (key: string, item: unknown) => void, depth = 0): void {
  if (depth > 6 || value === null || typeof value !== 'object') return;
  for (const [key, item] of Object.entries(value)) {
    onEntry(key, item);
    if (typeof item === 'string' && item.trim().startsWith('{')) {
      try {
        visit(JSON.parse(item), onEntry, depth + 1);
      } catch {
        // A plain string that happens to start with "{": nothing to look into.
      }
    } else visit(item, onEntry, depth + 1);
  }
}

/** Splits a shell command into words, honouring single quotes, double quotes, $'…' and line continuations. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let current = '';
  let hasWord = false;
  const text = command.replace(/\\\r?\n/g, ' ').replace(/\^\r?\n/g, ' ');
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index];
    if (character === "'" || (character === '$' && text[index + 1] === "'")) {
      if (character === '$') index += 1;
      const end = text.indexOf("'", index + 1);
      current += text.slice(index + 1, end === -1 ? text.length : end);
      index = end === -1 ? text.length : end;
      hasWord = true;
    } else if (character === '"') {
      let end = index + 1;
      while (end < text.length && text[end] !== '"') {
        if (text[end] === '\\' && end + 1 < text.length) {
          current += text[end + 1];
          end += 2;
        } else current += text[end++];
      }
      index = end;
      hasWord = true;
    } else if (/\s/.test(character)) {
      if (hasWord) words.push(current);
      current = '';
      hasWord = false;
    } else {
      current += character;
      hasWord = true;
    }
  }
  if (hasWord) words.push(current);
  return words;
}

function unquote(text: string): string {
  return text.replace(/^["']|["']$/g, '');
}

function dedupe(candidates: Candidate[]): Candidate[] {
  const seen = new Set<string>();
  return candidates.filter((candidate) => candidate.token && !seen.has(candidate.token) && seen.add(candidate.token));
}

function describe(source: CredentialSource): string {
  return source === 'curl' ? 'cURL command' : source === 'local-storage' ? 'JSON' : source === 'cookie' ? 'cookie' : 'text';
}
