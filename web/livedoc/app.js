// livedoc entry point: tabs (with the hash as the address), the token
// field, the health line, and the links between panels.
import { $ } from './dom.js';
import { auth, authMessage } from './api.js';
import { initHealth, checkHealth } from './health.js';
import { initReference } from './reference.js';
import { initStreams } from './streams.js';
import { initWebSocket } from './wsconsole.js';
import { initEmitters } from './emitters.js';
import { initPlugins } from './plugins.js';
import { initQueues } from './queues.js';
import { initCluster } from './cluster.js';
import { initOverview } from './overview.js';
import { initViewer } from './viewer.js';
import { initGuests } from './guests.js';

const tabs = [...document.querySelectorAll('[role="tab"]')];
const shown = new Map(); // tab name -> callback(visible)

/** app is what panels use to reach each other. */
export const app = {
  select(name, focus = false) {
    // "reference/KEY" is the reference tab, at one route.
    const tab = tabs.find((t) => t.dataset.tab === name.split('/')[0]) || tabs[0];
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
      const cb = shown.get(t.dataset.tab);
      if (cb) cb(on);
    }
    if (focus) tab.focus();
    // A new tab is a new history entry, so Back returns to the previous
    // tab; the first one (no hash yet) only names the page's address.
    const hash = '#' + (name.startsWith(tab.dataset.tab + '/') ? name : tab.dataset.tab);
    if (location.hash === hash) return;
    if (location.hash) history.pushState(null, '', hash); else history.replaceState(null, '', hash);
  },
  onShow(name, cb) { shown.set(name, cb); },
  watch: null, // set by the streams panel: watch(streamId)
  openSocket: null, // set by the WebSocket console: openSocket(path)
  view: null, // set by the stream viewer: view(streamId)
};

function initTabs() {
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => app.select(t.dataset.tab));
    t.addEventListener('keydown', (e) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(e.key in moves)) return;
      e.preventDefault();
      const next = tabs[(moves[e.key] + tabs.length) % tabs.length];
      app.select(next.dataset.tab, true);
    });
  });
  window.addEventListener('hashchange', () => app.select(location.hash.slice(1)));
}

function initAuth() {
  const input = $('token');
  const state = $('token-state');
  input.value = auth.token;
  // A panel got a 401: say so next to the field, once, until a new token.
  window.addEventListener('livedoc:auth-needed', () => {
    const text = authMessage().replace(/ at the top of the page$/, '');
    if (!state.hidden && state.textContent === text) return;
    state.textContent = text.charAt(0).toUpperCase() + text.slice(1) + '.';
    state.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  });
  const use = (token) => {
    input.value = token;
    auth.token = token;
    state.hidden = true;
    state.textContent = '';
    input.removeAttribute('aria-invalid');
    checkHealth();
    // Reload what the shown panel lists, now with (or without) the token.
    const tab = tabs.find((t) => t.getAttribute('aria-selected') === 'true');
    if (tab) app.select(tab.dataset.tab);
  };
  $('auth').addEventListener('submit', (e) => { e.preventDefault(); use(input.value.trim()); });
  $('token-clear').addEventListener('click', () => use(''));
}

initTabs();
initAuth();
initReference(app);
initStreams(app);
initWebSocket(app);
initEmitters(app);
initPlugins(app);
initQueues(app);
initCluster(app);
initOverview(app);
initViewer(app);
initGuests(app);
app.select(location.hash.slice(1) || 'overview');
initHealth();
