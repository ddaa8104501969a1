// WebSocket console for /echo and the stream sockets: connect, send, see
// every frame both ways with its time.
import { $, h, clock, trimList, appendScrolled } from './dom.js';
import { auth, wsURL } from './api.js';

const MAX_ROWS = 300;

export function initWebSocket(app) {
  let ws = null;
  const state = (s) => { $('ws-state').textContent = s; };
  const log = (cls, dir, text) => {
    const list = $('ws-log');
    appendScrolled(list, h('li', { class: cls }, h('span', { class: 'dir', 'aria-label': cls }, dir), h('span', null, clock(new Date())), h('span', null, text)));
    trimList(list, MAX_ROWS);
  };
  const setOpen = (open) => {
    $('ws-send').disabled = !open;
    $('ws-close').disabled = !open && !ws;
    $('ws-connect').disabled = open;
  };

  const connect = (path) => {
    if (ws) ws.close(1000, 'reconnect');
    const sock = new WebSocket(wsURL(path));
    ws = sock;
    state('connecting');
    log('note', '•', 'connecting to ' + path);
    setOpen(false);
    let opened = false;
    sock.onopen = () => { opened = true; if (ws === sock) { state('open'); setOpen(true); log('note', '•', 'open'); } };
    sock.onmessage = (e) => log('recv', '←', typeof e.data === 'string' ? e.data : `(binary, ${e.data.size} bytes)`);
    sock.onclose = (e) => {
      // A refused handshake (a 401 among others) closes before it opened.
      if (!opened) log('note', '•', 'the node refused the connection' + (auth.token ? '' : ' (this node may require a bearer token)'));
      log('note', '•', `closed: code ${e.code}${e.reason ? ' ' + e.reason : ''}${e.wasClean ? '' : ' (not clean)'}`);
      if (ws === sock) { ws = null; state('closed'); setOpen(false); $('ws-close').disabled = true; }
    };
  };

  app.openSocket = (path) => {
    app.select('streams');
    $('ws-path').value = path;
    connect(path);
    $('ws-msg').focus();
  };

  $('ws-form').addEventListener('submit', (e) => { e.preventDefault(); connect($('ws-path').value.trim() || '/echo'); });
  $('ws-close').addEventListener('click', () => { if (ws) ws.close(1000, 'bye'); });
  $('ws-clear').addEventListener('click', () => $('ws-log').replaceChildren());
  const send = () => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const msg = $('ws-msg').value;
    ws.send(msg);
    log('sent', '→', msg);
  };
  $('ws-send-form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('ws-msg').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
}
