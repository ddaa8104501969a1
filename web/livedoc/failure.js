// Failures said as what happened: why a stream or socket was refused (the
// browser hides the status of both, so the page asks again with fetch), and
// the node's error answers as sentences with their fields.
import { h } from './dom.js';
import { authHeaders, authMessage, authNeeded } from './api.js';
import { readable } from './wording.js';

/** whyRefused asks path again with fetch and says why the stream or socket
 * there was refused; retry tells whether trying again may help. */
export async function whyRefused(path) {
  const ctl = new AbortController();
  let res;
  try {
    res = await fetch(path, { headers: authHeaders(), signal: ctl.signal, cache: 'no-store' });
  } catch {
    return { text: `cannot reach ${location.host} (network error: the node is down or unreachable)`, retry: true };
  }
  if (res.ok) {
    ctl.abort(); // a stream that answers now is not read
    return { text: `the node answers ${res.status} now: it closed the connection (it may have restarted)`, retry: true };
  }
  let body = null;
  try { body = await res.json(); } catch { /* not the API's error body */ }
  const e = (body && body.error) || {};
  const msg = e.message ? readable(e.message) : res.statusText;
  switch (res.status) {
    case 400: return { text: e.code === 'websocket_required' ? 'the node refused the WebSocket handshake' : `bad request (400): ${msg}`, retry: false };
    case 401: authNeeded(); return { text: authMessage(), retry: false };
    case 403: return { text: `forbidden (403): this token may not read it: ${msg}`, retry: false };
    case 404: return { text: `not found (404): ${msg}`, retry: false };
    case 502: case 503: case 504: return { text: `the node cannot serve it now (${res.status}): ${msg}`, retry: true };
    default: return { text: `HTTP ${res.status}: ${msg}`, retry: res.status >= 500 };
  }
}

/** errorView shows an API error body: the message, then each field. */
export function errorView(status, body) {
  const e = (body && body.error) || {};
  const fields = Array.isArray(e.fields) ? e.fields : [];
  return h('div', { class: 'api-error', role: 'alert' },
    h('p', null, h('strong', null, `${status} ${e.code || 'error'}`), ': ', readable(e.message || '')),
    fields.length ? h('ul', null, fields.map((f) => h('li', null,
      // A node that words its errors names the field in the sentence.
      String(f.message || '').startsWith(f.field + ' ') ? null : [h('code', null, f.field || '(body)'), ' '],
      readable(f.message)))) : null);
}
