// The one place the page talks to the server: JSON over fetch with the
// session cookie and the CSRF token, and WebSockets that reconnect.
// The page never sends basic auth; the login is the session cookie.

let csrf = '';
let sessionLost = null;

// setCsrf keeps the token of the session (from GET/POST /api/v1/session);
// every state-changing request sends it as X-CSRF-Token.
export function setCsrf(token) {
  csrf = token || '';
}

// onSessionLost registers what to do when a call answers 401 while
// signed in (the session expired or was ended elsewhere).
export function onSessionLost(fn) {
  sessionLost = fn;
}

// ApiError is a failed call: status 0 when the server was not reached.
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.path = path;
  }
}

const STATUS_TEXT = {
  0: 'cannot reach the server; check the connection',
  400: 'the server did not accept the request',
  401: 'sign-in needed',
  403: 'not allowed for this account',
  404: 'the server does not offer this (404)',
  409: 'this conflicts with existing data',
  413: 'too large',
  429: 'too many requests; wait a moment',
};

function statusText(status) {
  return STATUS_TEXT[status] || (status >= 500 ? `the server had a problem (${status}); try again later` : `the server answered ${status}`);
}

// request calls the API. body (if any) is sent as JSON. With raw the
// Response is returned (to read headers); otherwise the parsed JSON, or
// null for an empty answer. Errors throw ApiError with the server's
// {"error": "…"} text when it sent one. Options: signal (AbortSignal),
// quiet401 (a 401 is expected, as on the login form).
export async function request(method, path, body, opts = {}) {
  // X-Requested-With tells the server this is the page, so a 401 comes
  // without a Basic challenge (which would pop up the browser's dialog).
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, statusText(0), path);
  }
  if (!res.ok) {
    let text = '';
    try {
      const j = await res.json();
      text = typeof j?.error === 'string' ? j.error : '';
    } catch {
      // Not JSON: the status says enough.
    }
    const err = new ApiError(res.status, text || statusText(res.status), path);
    if (res.status === 401 && !opts.quiet401 && sessionLost) sessionLost(err);
    throw err;
  }
  if (opts.raw) return res;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'the server sent something that is not JSON', path);
  }
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

// query builds "path?a=1&b=2", leaving out empty values.
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v != null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;

// Socket keeps a WebSocket to path open: it reconnects with exponential
// backoff and jitter (so 500 browsers do not return at once after a
// server restart) until stop(). The browser sends the session cookie with
// the handshake. Callbacks: onOpen(ws), onMessage(parsed JSON),
// onState('connecting' | 'open' | 'closed', failures).
export class Socket {
  constructor(path, { onOpen, onMessage, onState } = {}) {
    this.path = path;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.timer = 0;
    this.delay = RECONNECT_MIN_MS;
    this.failures = 0;
    this.stopped = true;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.failures = 0;
    this.delay = RECONNECT_MIN_MS;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      ws.close();
    }
    this.onState?.('closed', 0);
  }

  // send sends text if the socket is open; false if not.
  send(text) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    } catch {
      this.retry(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    this.onState?.('connecting', this.failures);
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.delay = RECONNECT_MIN_MS;
      this.onState?.('open', 0);
      this.onOpen?.(ws);
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage?.(msg);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      this.retry(opened);
    };
  }

  retry(opened) {
    if (this.stopped) return;
    if (!opened) this.failures++;
    const wait = this.delay * (0.75 + Math.random() / 2);
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
    this.onState?.('closed', this.failures);
    this.timer = setTimeout(() => this.connect(), wait);
  }
}
