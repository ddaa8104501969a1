// The one way the page talks to the node: same origin only, with the bearer
// token (if any) on every request and as access_token on streams.

import { readable } from './wording.js';

const KEY = 'sidestream.livedoc.token';

export const auth = {
  get token() { return sessionStorage.getItem(KEY) || ''; },
  set token(v) {
    if (v) sessionStorage.setItem(KEY, v); else sessionStorage.removeItem(KEY);
  },
};

/** authMessage says what a 401 means for the person at the page. */
export function authMessage() {
  return auth.token
    ? 'the node refused this bearer token (401): check the token at the top of the page'
    : 'this node requires a bearer token (401): enter it in the token field at the top of the page';
}

/** authNeeded tells the page (the token field) that the node asked for a token. */
export function authNeeded() {
  window.dispatchEvent(new CustomEvent('livedoc:auth-needed'));
}

/** ApiError is a non-2xx answer in the API's error shape; a 401 says
 * what to do about it. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(status === 401 ? authMessage() : readable(e.message) || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.fields = (Array.isArray(e.fields) ? e.fields : []).map((f) => ({ ...f, message: readable(f.message) }));
  }
}

function withAuth(headers) {
  const out = { ...headers };
  if (auth.token) out.Authorization = 'Bearer ' + auth.token;
  return out;
}

/** authHeaders are the headers that carry the token (none without one). */
export const authHeaders = () => withAuth({});

/** api sends a JSON request and returns the decoded answer (null on 204);
 * a non-2xx answer throws ApiError. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: withAuth(body === undefined ? headers : { ...headers, 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (res.status === 401) authNeeded();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** exchange sends any request and reports everything about the answer:
 * status, headers, body text and timing. A streaming answer
 * (text/event-stream) is read for at most streamMs, then cut. */
export async function exchange(method, path, { headers = {}, body, streamMs = 3000, maxBytes = 64 << 10 } = {}) {
  const ctl = new AbortController();
  const t0 = performance.now();
  const init = { method, headers: withAuth(headers), signal: ctl.signal, redirect: 'manual', cache: 'no-store' };
  if (body !== undefined && body !== '') init.body = body;
  const res = await fetch(path, init);
  const tHead = performance.now() - t0;
  const out = {
    status: res.status, statusText: res.statusText, type: res.type,
    headers: [...res.headers.entries()], text: '', headMs: tHead, totalMs: 0, cut: false,
  };
  if (res.type === 'opaqueredirect') { out.totalMs = tHead; return out; }
  const streaming = (res.headers.get('content-type') || '').startsWith('text/event-stream');
  const reader = res.body ? res.body.getReader() : null;
  const dec = new TextDecoder();
  let timer = 0;
  if (streaming) timer = setTimeout(() => { out.cut = true; ctl.abort(); }, streamMs);
  try {
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      out.text += dec.decode(value, { stream: true });
      if (out.text.length > maxBytes) { out.cut = true; ctl.abort(); break; }
    }
  } catch (e) {
    if (!out.cut) throw e;
  } finally {
    clearTimeout(timer);
  }
  out.totalMs = performance.now() - t0;
  return out;
}

/** streamURL adds the token as access_token (EventSource cannot send headers). */
export function streamURL(path) {
  if (!auth.token) return path;
  return path + (path.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(auth.token);
}

/** wsURL is the same-origin WebSocket address of path, with the token. */
export function wsURL(path) {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  return scheme + location.host + streamURL(path.startsWith('/') ? path : '/' + path);
}

/** kinds loads /api/v1/kinds once per page (plugins describe themselves). */
let kindsPromise = null;
export function kinds(refresh = false) {
  if (refresh || !kindsPromise) {
    kindsPromise = api('GET', '/api/v1/kinds').then((r) => r.items || []).catch((e) => { kindsPromise = null; throw e; });
  }
  return kindsPromise;
}

/** openapi loads the node's OpenAPI document (as JSON) once per page. */
let docPromise = null;
export function openapi() {
  if (!docPromise) docPromise = api('GET', '/openapi.json').catch((e) => { docPromise = null; throw e; });
  return docPromise;
}
