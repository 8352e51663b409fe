// The status page's behaviour (issue 6, issue 10): reads the gateway's JSON endpoints, renders them
// with textContent only (every server string is data, never markup), adds accounts (pasted text or QR
// login) and streams a playground completion. Plain browser JavaScript, no build step, no framework.

const KEY_STORAGE = 'kimi-free-api.gateway-key';
const REFRESH_MS = 10_000;
const $ = (id) => document.getElementById(id);

/** Thrown when the gateway wants a key; the key form is already showing. */
class KeyRequired extends Error {}

function gatewayKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? '';
}

/** fetch with the gateway key (sessionStorage only) and one place that reacts to 401. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  const key = gatewayKey();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    askForKey(key ? 'That key was refused. Enter the gateway key again.' : undefined);
    throw new KeyRequired('gateway key required');
  }
  return response;
}

function askForKey(message) {
  if (message) $('key-message').textContent = message;
  $('key-section').hidden = false;
  $('key-input').focus();
}

/** The message of an OpenAI error envelope, or the status line when the body is not one. */
async function errorText(response) {
  let text = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) text = `${body.error.message ?? text} (${body.error.code ?? response.status})`;
  } catch {
    // Not JSON: the status line is all we have.
  }
  const retryAfter = response.headers.get('Retry-After');
  return retryAfter ? `${text}; retry after ${retryAfter} s` : text;
}

/** Builds an element; string children become text nodes, so server data can never become markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}

/** Times arrive as ISO strings or epoch milliseconds (seconds are tolerated too). */
function toDate(value) {
  if (value === undefined || value === null || value === '') return undefined;
  let input = value;
  if (typeof input === 'string' && /^\d+(\.\d+)?$/.test(input)) input = Number(input);
  if (typeof input === 'number' && input < 1e11) input *= 1000;
  const date = new Date(input);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function relativeTime(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const size = Math.abs(seconds);
  const [amount, unit] =
    size < 60 ? [seconds, 'second'] : size < 3600 ? [Math.round(seconds / 60), 'minute']
      : size < 86_400 ? [Math.round(seconds / 3600), 'hour'] : [Math.round(seconds / 86_400), 'day'];
  return new Intl.RelativeTimeFormat('en', { numeric: 'auto' }).format(amount, unit);
}

function timeCell(value) {
  const date = toDate(value);
  if (!date) return el('td', {}, '–');
  return el('td', {}, el('time', { datetime: date.toISOString(), title: date.toLocaleString() }, relativeTime(date)));
}

function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days) return `${days} d ${hours} h`;
  if (hours) return `${hours} h ${minutes} min`;
  return minutes ? `${minutes} min ${seconds % 60} s` : `${seconds} s`;
}

/** Quota is optional and its shape is the upstream's; show the common fields, else the value. */
function formatQuota(quota) {
  if (quota === undefined || quota === null) return '–';
  if (typeof quota !== 'object') return String(quota);
  const used = quota.used ?? quota.usage;
  const limit = quota.limit ?? quota.total;
  const parts = [];
  if (typeof quota.label === 'string') parts.push(quota.label);
  else if (used !== undefined && limit !== undefined) parts.push(`${used} / ${limit} used`);
  if (quota.remaining !== undefined) parts.push(`${quota.remaining} left`);
  const reset = toDate(quota.resetAt ?? quota.resetsAt);
  if (reset) parts.push(`resets ${relativeTime(reset)}`);
  return parts.length ? parts.join(', ') : JSON.stringify(quota);
}

function accountRow(account) {
  const state = String(account.state ?? 'unknown');
  const stateCell = el('td', {}, el('span', { class: `state state-${state.replace(/[^a-z]/g, '')}` }, state));
  if (account.cooldownUntil) {
    const until = toDate(account.cooldownUntil);
    if (until) stateCell.append(` (until ${until.toLocaleTimeString()})`);
  }
  const access = timeCell(account.accessExpiresAt);
  if (account.isShortLived) access.append(' ', el('span', { class: 'badge' }, 'short-lived'));
  return el('tr', {},
    el('td', {}, el('code', {}, account.id ?? '?')),
    el('td', {}, account.dialect ?? '–'),
    stateCell,
    access,
    timeCell(account.refreshExpiresAt),
    timeCell(account.lastRefreshAt),
    timeCell(account.lastUsedAt),
    el('td', { class: 'number' }, account.inFlight ?? 0),
    el('td', {}, formatQuota(account.quota)),
    el('td', {}, account.source ?? '–'));
}

function renderAccounts(accounts) {
  $('accounts-body').replaceChildren(...accounts.map(accountRow));
  $('accounts-empty').hidden = accounts.length > 0;
  const live = accounts.filter((account) => account.state === 'live').length;
  return `${live} of ${accounts.length} account${accounts.length === 1 ? '' : 's'} live`;
}

function sortedEntries(record) {
  return Object.entries(record ?? {}).sort((a, b) => Number(b[1]) - Number(a[1]) || a[0].localeCompare(b[0]));
}

function renderErrors(errors) {
  const rows = sortedEntries(errors).map(([code, count]) =>
    el('tr', {}, el('td', {}, el('code', {}, code)), el('td', { class: 'number' }, count)));
  $('errors-body').replaceChildren(...rows);
  $('errors-table').hidden = rows.length === 0;
  $('errors-empty').hidden = rows.length > 0;
}

function renderUnknown(unknown) {
  const entries = sortedEntries(unknown);
  const total = entries.reduce((sum, [, count]) => sum + Number(count), 0);
  $('unknown-summary').textContent = entries.length === 0
    ? 'Upstream sent nothing unknown.'
    : `Upstream sent ${entries.length} unknown thing${entries.length === 1 ? '' : 's'} (${total} times in all). ` +
      'The gateway kept working; an update may be needed.';
  $('unknown-list').replaceChildren(...entries.map(([name, count]) =>
    el('li', {}, el('code', {}, name), ` × ${count}`)));
}

async function refreshStatus() {
  const response = await api('/v1/status');
  if (!response.ok) throw new Error(await errorText(response));
  const status = await response.json();
  $('key-section').hidden = true;
  $('service-version').textContent = status.version ?? '–';
  $('service-dialect').textContent = status.dialectMode ?? '–';
  $('service-uptime').textContent = formatDuration(status.uptimeSeconds);
  let accounts = status.accounts;
  if (!Array.isArray(accounts)) {
    const listed = await api('/v1/accounts');
    accounts = listed.ok ? ((await listed.json()).data ?? []) : [];
  }
  $('summary').textContent = renderAccounts(accounts);
  renderErrors(status.errors);
  renderUnknown(status.unknownUpstream);
}

async function loadModels() {
  const response = await api('/v1/models');
  if (!response.ok) throw new Error(await errorText(response));
  const models = (await response.json()).data ?? [];
  const select = $('model-select');
  const previous = select.value;
  select.replaceChildren(...models.map((model) => el('option', { value: model.id }, model.id)));
  if (previous && models.some((model) => model.id === previous)) select.value = previous;
}

async function refreshAll() {
  try {
    await refreshStatus();
    if ($('model-select').options.length === 0) await loadModels();
  } catch (error) {
    if (!(error instanceof KeyRequired)) $('summary').textContent = `Could not load status: ${error.message}`;
  }
}

async function addAccount(event) {
  event.preventDefault();
  const input = $('account-input');
  const result = $('account-result');
  result.textContent = 'Checking the account with Kimi…';
  try {
    const response = await api('/v1/accounts', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ input: input.value }),
    });
    if (!response.ok) {
      result.textContent = `Not added: ${await errorText(response)}`;
      return;
    }
    const body = await response.json().catch(() => ({}));
    const account = body.account ?? body;
    input.value = ''; // the textarea held a secret; do not leave it on screen
    const warnings = [...(body.warnings ?? [])];
    if (account.isShortLived) warnings.push('This is a short-lived access token: it stops working when it expires.');
    result.textContent = `Added account ${account.id ?? ''} (${account.dialect ?? 'dialect unknown'}, ` +
      `${account.state ?? 'state unknown'}). ${warnings.join(' ')}`.trim();
    await refreshAll();
  } catch (error) {
    if (!(error instanceof KeyRequired)) result.textContent = `Not added: ${error.message}`;
  }
}

/** The data lines of one SSE event joined by newlines (comments and other fields are ignored). */
function eventData(event) {
  return event.split(/\r?\n/).filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5)).join('\n');
}

/** Yields the data payloads of an SSE body, split on blank lines, decoded byte-safely. */
async function* sseData(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const events = buffer.split(/\r?\n\r?\n/);
      buffer = events.pop();
      for (const event of events) {
        const data = eventData(event);
        if (data) yield data;
      }
    }
    const last = eventData(buffer);
    if (last) yield last;
  } finally {
    reader.cancel().catch(() => {}); // leaving early (at [DONE] or on error) releases the connection
  }
}

let playgroundAbort;

async function runPlayground(event) {
  event.preventDefault();
  const answer = $('answer-output');
  const reasoning = $('reasoning-output');
  const errorLine = $('playground-error');
  answer.textContent = '';
  reasoning.textContent = '';
  errorLine.textContent = '';
  playgroundAbort = new AbortController();
  $('send-button').disabled = true;
  $('stop-button').disabled = false;
  answer.setAttribute('aria-busy', 'true');
  try {
    const response = await api('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model: $('model-select').value,
        stream: true,
        messages: [{ role: 'user', content: $('prompt-input').value }],
      }),
      signal: playgroundAbort.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    let finished = false;
    for await (const data of sseData(response.body)) {
      if (data === '[DONE]') { finished = true; break; }
      const chunk = JSON.parse(data);
      // After the first byte the gateway reports failure as a final data payload with `error`.
      if (chunk.error) throw new Error(`${chunk.error.message} (${chunk.error.code ?? 'error'})`);
      const delta = chunk.choices?.[0]?.delta ?? {};
      if (delta.reasoning_content) reasoning.append(delta.reasoning_content);
      if (delta.content) answer.append(delta.content);
    }
    if (!finished) throw new Error('The stream ended without [DONE]; the answer may be cut short.');
  } catch (error) {
    if (error.name === 'AbortError') errorLine.textContent = 'Stopped.';
    else if (!(error instanceof KeyRequired)) errorLine.textContent = `Error: ${error.message}`;
  } finally {
    answer.setAttribute('aria-busy', 'false');
    $('send-button').disabled = false;
    $('stop-button').disabled = true;
  }
}

// QR login (issue 10): the gateway starts it upstream and polls Kimi; the page only follows the local id.
const QR_POLL_MS = 1500;
const QR_MAX_WAIT_MS = 6 * 60_000;
const QR_WORDS = {
  pending: 'Waiting for the phone to scan the code…',
  scanned: 'Scanned. Confirm the login on the phone…',
};

/** Only http(s) links are shown: a server string must never become a javascript: URL. */
function safeLink(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

async function startQrLogin() {
  const button = $('qr-button');
  const status = $('qr-status');
  button.disabled = true;
  status.textContent = 'Asking Kimi for a login code…';
  try {
    const created = await api('/v1/accounts/qr', { method: 'POST' });
    if (!created.ok) throw new Error(await errorText(created));
    const login = await created.json();
    const href = safeLink(login.url);
    if (!href) throw new Error('the gateway returned no usable login link');
    const link = $('qr-link');
    link.href = href;
    link.textContent = href;
    const image = $('qr-image');
    if (typeof login.qrImage === 'string' && login.qrImage.startsWith('data:image/svg+xml;base64,')) {
      image.src = login.qrImage;
      image.hidden = false;
    }
    $('qr-panel').hidden = false;
    status.textContent = QR_WORDS.pending;
    const deadline = Date.now() + QR_MAX_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, QR_POLL_MS));
      const polled = await api(`/v1/accounts/qr?id=${encodeURIComponent(login.id)}`);
      if (!polled.ok) throw new Error(await errorText(polled));
      const state = await polled.json();
      if (state.status === 'confirmed') {
        const account = state.account ?? {};
        $('qr-panel').hidden = true;
        status.textContent = `Added account ${account.id ?? ''} (${account.dialect ?? 'dialect unknown'}, ${account.state ?? 'state unknown'}) by QR login.`;
        await refreshAll();
        return;
      }
      if (state.status === 'failed') throw new Error(`${state.error?.message ?? 'the login failed'} (${state.error?.code ?? 'qr_failed'})`);
      status.textContent = QR_WORDS[state.status] ?? `Status: ${state.status}`;
    }
    throw new Error('no confirmation arrived in time; start again');
  } catch (error) {
    $('qr-panel').hidden = true;
    if (!(error instanceof KeyRequired)) status.textContent = `QR login did not complete: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function start() {
  $('qr-button').addEventListener('click', startQrLogin);
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $('key-input').value.trim());
    $('key-input').value = '';
    $('key-section').hidden = true;
    refreshAll();
  });
  $('account-form').addEventListener('submit', addAccount);
  $('playground-form').addEventListener('submit', runPlayground);
  $('stop-button').addEventListener('click', () => playgroundAbort?.abort());
  refreshAll();
  setInterval(() => {
    if (document.visibilityState === 'visible' && $('key-section').hidden) refreshAll();
  }, REFRESH_MS);
}

start();
