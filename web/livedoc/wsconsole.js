// WebSocket console for /echo and the stream sockets: connect, send, see
// every frame both ways with its time. A socket the node dropped (a
// restart, a lost network) is reopened with a growing delay.
import { $, h, clock, trimList, appendScrolled } from './dom.js';
import { wsURL } from './api.js';
import { whyRefused } from './failure.js';

const MAX_ROWS = 300;
const RETRY_MAX_MS = 8000;

/** closeReasons says what a close code means for the person at the page. */
const closeReasons = {
  1000: 'closed normally',
  1001: 'the node is going away (shutting down or restarting)',
  1006: 'connection lost',
  1008: 'the node refused a message (policy violation)',
  1009: 'a message was too big for the node',
  1011: 'the node hit an error',
  1012: 'the node is restarting',
  1013: 'the node is overloaded: try again later',
};

/** isStreamSocket: stream sockets accept only {"resume": seq} frames. */
const isStreamSocket = (path) => /^\/(api\/v1\/streams\/[^/?]+\/ws|ws\/track\/)/.test(path);

/** defaultMessage is a message the socket at path accepts. */
const defaultMessage = (path) => (isStreamSocket(path) ? '{"resume": 0}' : '{"hello": "sidestream"}');

/** checkFrame says why msg would make a stream socket close (1008), or ''. */
function checkFrame(path, msg) {
  if (!isStreamSocket(path)) return '';
  let f;
  try { f = JSON.parse(msg); } catch { f = null; }
  const ok = f && typeof f === 'object' && !Array.isArray(f) && Object.keys(f).join() === 'resume' &&
    Number.isInteger(f.resume) && f.resume >= 0;
  return ok ? '' : 'not sent: a stream socket accepts only {"resume": seq} (anything else closes it with 1008)';
}

export function initWebSocket(app) {
  let ws = null;
  let retry = { timer: 0, delay: 1000 };
  let lastDefault = $('ws-msg').value;
  const state = (s) => { $('ws-state').textContent = s; };
  const log = (cls, dir, text) => {
    const list = $('ws-log');
    appendScrolled(list, h('li', { class: cls }, h('span', { class: 'dir', 'aria-label': cls }, dir), h('span', null, clock(new Date())), h('span', null, text)));
    trimList(list, MAX_ROWS);
  };
  const setOpen = (open, busy) => {
    $('ws-send').disabled = !open;
    $('ws-close').disabled = !busy;
    $('ws-connect').disabled = busy;
    // The path names the open socket: editable again once it is closed.
    $('ws-path').readOnly = busy;
  };
  // The message follows the path while it is the last default or the
  // socket there would refuse it.
  const suggest = () => {
    const path = $('ws-path').value.trim();
    const msg = $('ws-msg').value;
    if (msg === lastDefault || checkFrame(path, msg)) $('ws-msg').value = defaultMessage(path);
    lastDefault = defaultMessage(path);
  };
  suggest();

  const stopRetry = () => { clearTimeout(retry.timer); retry = { timer: 0, delay: 1000 }; };

  const connect = (path, again = false) => {
    clearTimeout(retry.timer);
    if (!again) retry.delay = 1000;
    if (ws) { const old = ws; ws = null; old.close(1000, 'reconnect'); }
    const sock = new WebSocket(wsURL(path));
    ws = sock;
    state(again ? 'reconnecting…' : 'connecting');
    log('note', '•', (again ? 'reconnecting to ' : 'connecting to ') + path);
    setOpen(false, true);
    let opened = false;
    sock.onopen = () => {
      opened = true;
      if (ws !== sock) return;
      retry.delay = 1000;
      state('open'); setOpen(true, true); log('note', '•', 'open');
    };
    sock.onmessage = (e) => log('recv', '←', typeof e.data === 'string' ? e.data : `(binary, ${e.data.size} bytes)`);
    sock.onclose = async (e) => {
      if (ws !== sock) return; // replaced or closed by the page
      const why = closeReasons[e.code] || 'closed';
      log('note', '•', `closed: code ${e.code} (${why})${e.reason ? ': ' + e.reason : ''}`);
      // Dropped by the node or the network: reopen. Closed on purpose
      // (1000), refused (1008, 1009) or never opened with a clear refusal:
      // stop and say why.
      let again = [1001, 1006, 1011, 1012, 1013].includes(e.code);
      if (!opened) {
        const r = await whyRefused(path);
        if (ws !== sock) return;
        log('note', '•', 'not connected: ' + r.text);
        again = r.retry;
      }
      if (again) {
        const wait = retry.delay;
        retry.delay = Math.min(retry.delay * 2, RETRY_MAX_MS);
        state(`reconnecting in ${Math.round(wait / 1000)} s…`);
        retry.timer = setTimeout(() => { if (ws === sock) connect(path, true); }, wait);
        setOpen(false, true);
        return;
      }
      ws = null; state('closed'); setOpen(false, false);
    };
  };
  const disconnect = () => {
    stopRetry();
    if (!ws) return;
    const sock = ws;
    ws = null;
    sock.close(1000, 'bye');
    log('note', '•', 'closed by the page');
    state('closed'); setOpen(false, false);
  };

  app.openSocket = (path) => {
    app.select('streams');
    disconnect();
    $('ws-path').value = path;
    suggest();
    connect(path);
    $('ws-msg').focus();
  };

  $('ws-path').addEventListener('input', suggest);
  $('ws-path').addEventListener('change', suggest);
  $('ws-form').addEventListener('submit', (e) => { e.preventDefault(); if (!ws) { suggest(); connect($('ws-path').value.trim() || '/echo'); } });
  $('ws-close').addEventListener('click', disconnect);
  $('ws-clear').addEventListener('click', () => $('ws-log').replaceChildren());
  const send = () => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const msg = $('ws-msg').value;
    const refused = checkFrame($('ws-path').value.trim(), msg);
    if (refused) { log('note', '•', refused); return; }
    ws.send(msg);
    log('sent', '→', msg);
  };
  $('ws-send-form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('ws-msg').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
}
