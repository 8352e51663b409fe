/**
 * @module http/status-page/serve-static
 * The status page's three static files, read once when this module loads, looked up by request path
 * (`/`, `/index.html`, `/status-page.js`, `/status-page.css`). Node builtins only; the HTTP app mounts it.
 */
import { readFileSync } from 'node:fs';

export interface StaticAsset {
  body: Buffer;
  contentType: string;
}

/**
 * Headers the app should send with every asset: the page loads only its own script and style and
 * talks only to this origin, so an injected string could not load or send anything elsewhere.
 */
export const statusPageSecurityHeaders: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
});

function readAsset(fileName: string, contentType: string): StaticAsset {
  return { body: readFileSync(new URL(`./${fileName}`, import.meta.url)), contentType };
}

const html = readAsset('index.html', 'text/html; charset=utf-8');
const assets: ReadonlyMap<string, StaticAsset> = new Map([
  ['/', html],
  ['/index.html', html],
  ['/status-page.js', readAsset('status-page.js', 'text/javascript; charset=utf-8')],
  ['/status-page.css', readAsset('status-page.css', 'text/css; charset=utf-8')],
]);

/** The asset for a request path (query string ignored), or undefined when the path is not one of ours. */
export function statusPageAsset(pathname: string): StaticAsset | undefined {
  const queryStart = pathname.indexOf('?');
  return assets.get(queryStart === -1 ? pathname : pathname.slice(0, queryStart));
}
