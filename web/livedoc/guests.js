// Guests: the node's guests with their source, labels, state and attached
// emitters, kept live by the `guests` lifecycle stream instead of polling.
// While the tab is shown: the stream's head, then the list
// (GET /api/v1/guests), then an EventSource from that head on, each event
// applied to the list as it comes (appeared, gone, attached, detached,
// attach_failed). Events carry no path or pids, so a burst of them is
// followed by one fresh read of the list. A guest opens to its emitters;
// an emitter opens in the stream viewer.
import { $, h, clock } from './dom.js';
import { api, streamURL } from './api.js';
import { whyRefused } from './failure.js';

const STREAM = '/api/v1/streams/guests';
const TYPES = ['appeared', 'gone', 'attached', 'detached', 'attach_failed'];
const RECENT = 30; // lifecycle events listed
const SETTLE_MS = 400; // a burst of events, then one read of the list

const guests = new Map(); // "source/name" -> guest as GET /api/v1/guests lists it
const open = new Set(); // keys of the guests shown with their emitters
let es = null;
let gen = 0;
let settle = 0;
let drawn = 0;

export function initGuests(app) {
  const root = $('gu-root');
  root.replaceChildren(
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'gu-list-title' },
        h('h3', { id: 'gu-list-title' }, 'Guests'),
        h('div', { class: 'filters' },
          h('label', { for: 'gu-filter' }, 'Filter'),
          h('input', { id: 'gu-filter', type: 'search', spellcheck: 'false', placeholder: 'name, source or label', oninput: () => draw(app) })),
        h('div', { id: 'gu-list', class: 'gu-list' })),
      h('section', { class: 'card', 'aria-labelledby': 'gu-events-title' },
        h('h3', { id: 'gu-events-title' }, 'Comings and goings'),
        h('ol', { id: 'gu-events', class: 'ov-list gu-events', 'aria-label': 'Guest lifecycle events, newest first' }))));
  app.onShow('guests', (on) => { if (on) start(app); else stop(); });
}

function stop() {
  gen++;
  clearTimeout(settle);
  if (es) { es.close(); es = null; }
}

/** start reads the head, the list and the recent events, then follows
 * the stream from that head (so nothing between them is missed). */
async function start(app) {
  stop();
  const my = gen;
  status('Loading guests…');
  // Busy from the first show until the list is drawn (or cannot be).
  if (!$('gu-list').childElementCount) {
    $('gu-list').setAttribute('aria-busy', 'true');
    $('gu-list').replaceChildren(h('p', { class: 'hint' }, 'Loading…'));
  }
  try {
    const head = (await api('GET', `${STREAM}/events?after=0&limit=1`)).head;
    const [list, recent] = await Promise.all([api('GET', '/api/v1/guests'),
      api('GET', `${STREAM}/events?after=${Math.max(0, head - RECENT)}&limit=${RECENT}`)]);
    if (my !== gen) return;
    replace(list.items || []);
    $('gu-events').replaceChildren();
    for (const e of recent.events || []) logEvent(e.type, e.data, e.time);
    draw(app);
    follow(app, head, my);
  } catch (e) {
    if (my !== gen) return;
    status('Cannot list guests: ' + e.message, true);
    if (!guests.size) $('gu-list').replaceChildren();
    $('gu-list').setAttribute('aria-busy', 'false');
  }
}

function follow(app, head, my) {
  const path = `${STREAM}/sse?event_types=1&after=${head}`;
  const src = new EventSource(streamURL(path));
  es = src;
  src.onopen = () => { if (my === gen) live(); };
  src.onerror = async () => {
    if (my !== gen) return;
    // CONNECTING: the browser retries and resumes after the last id;
    // CLOSED: refused, and EventSource hides the status: ask again.
    if (src.readyState !== EventSource.CLOSED) { status('reconnecting…'); return; }
    status('Guest events stopped: asking the node why…', true);
    const r = await whyRefused(path);
    if (my === gen) status('Guest events stopped: ' + r.text, true);
  };
  for (const t of TYPES) {
    src.addEventListener(t, (m) => {
      if (my !== gen) return;
      let d = {};
      try { d = JSON.parse(m.data); } catch { return; }
      apply(t, d);
      logEvent(t, d, new Date().toISOString());
      draw(app);
      live();
      clearTimeout(settle);
      settle = setTimeout(() => reread(app, my), SETTLE_MS);
    });
  }
  // History the node no longer has, or a stream that started over: the
  // list is read again rather than guessed.
  for (const t of ['gap', 'reset']) src.addEventListener(t, () => { if (my === gen) reread(app, my); });
}

/** reread refreshes the list (paths, pids) after events. */
async function reread(app, my) {
  try {
    const list = await api('GET', '/api/v1/guests');
    if (my !== gen) return;
    replace(list.items || []);
    draw(app);
  } catch { /* the events applied stay; the stream's errors say the rest */ }
}

function replace(items) {
  guests.clear();
  for (const g of items) guests.set(g.source + '/' + g.name, g);
}

/** apply changes the list by one lifecycle event; applying an event the
 * list already shows changes nothing. */
function apply(type, d) {
  const key = d.source + '/' + d.guest;
  let g = guests.get(key);
  if (!g) {
    if (type === 'gone') return;
    g = { name: d.guest, source: d.source, labels: {}, state: 'present', emitters: [] };
    guests.set(key, g);
  }
  if (d.labels) g.labels = d.labels;
  if (type === 'appeared') g.state = 'present';
  if (type === 'gone') g.state = 'gone';
  if (!d.emitter) return;
  let em = g.emitters.find((e) => e.id === d.emitter);
  if (!em) { em = { id: d.emitter, kind: d.kind, rule: d.rule }; g.emitters.push(em); }
  em.state = type === 'attached' ? 'running' : type === 'detached' ? 'stopped' : type === 'attach_failed' ? 'failed' : em.state;
  em.error = type === 'attach_failed' ? d.error : '';
}

function live() {
  const present = [...guests.values()].filter((g) => g.state === 'present').length;
  status(`live · ${present} present, ${guests.size - present} gone · updated ${clock(new Date())}`);
}

function status(text, error = false) {
  const el = $('gu-status');
  el.className = error ? 'status error' : 'status';
  el.textContent = text;
}

const WORDS = { appeared: 'appeared', gone: 'gone', attached: 'attached', detached: 'detached', attach_failed: 'attach failed' };

function logEvent(type, d, time) {
  const pill = type === 'attach_failed' ? 'failed' : type === 'appeared' || type === 'attached' ? 'running' : 'other';
  const li = h('li', { dataset: { type, guest: d.guest } },
    h('time', { datetime: time, class: 'hint' }, clock(time)), ' ',
    h('span', { class: 'pill ' + pill }, WORDS[type] || type), ' ',
    h('strong', null, d.guest), h('span', { class: 'hint' }, ` (${d.source})`),
    d.emitter ? [' ', h('code', null, d.emitter)] : null,
    d.error ? h('p', { class: 'error-text gu-error' }, d.error) : null);
  const list = $('gu-events');
  list.prepend(li);
  while (list.childElementCount > RECENT) list.lastElementChild.remove();
}

/** draw renders the list, present guests first, each by source and name;
 * at most once per frame however many events come. */
function draw(app) {
  if (drawn) return;
  drawn = requestAnimationFrame(() => {
    drawn = 0;
    const q = $('gu-filter').value.trim().toLowerCase();
    const all = [...guests.entries()].sort(([a, x], [b, y]) =>
      (x.state === 'present' ? 0 : 1) - (y.state === 'present' ? 0 : 1) || a.localeCompare(b));
    const shown = all.filter(([key, g]) => !q || (key + ' ' + labelText(g)).toLowerCase().includes(q));
    const list = $('gu-list');
    // A redraw replaces the buttons: the one that had focus gets it back.
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.focus : '';
    list.replaceChildren(...(shown.length ? shown.map(([key, g], i) => card(app, key, g, i))
      : [h('p', { class: 'empty' }, all.length ? 'No guest matches the filter.'
        : 'No guests found. Guests come from the sources in the guests.sources setting.')]));
    list.setAttribute('aria-busy', 'false');
    if (focused) list.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  });
}

const labelText = (g) => Object.entries(g.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');

function card(app, key, g, i) {
  const expanded = open.has(key);
  const ems = g.emitters || [];
  const listID = 'gu-em-' + i;
  const toggle = h('button', { type: 'button', class: 'linkish', dataset: { focus: 'guest ' + key }, 'aria-expanded': String(expanded), 'aria-controls': listID,
    onclick: () => { if (open.has(key)) open.delete(key); else open.add(key); draw(app); } },
    h('span', { class: 'gu-mark', 'aria-hidden': 'true' }, expanded ? '▾' : '▸'), g.name);
  const where = g.path || (g.pids && g.pids.length ? 'pid ' + g.pids.join(', ') : '') || g.cgroup || '';
  return h('article', { class: 'gu-card' + (g.state === 'present' ? '' : ' gone'), dataset: { key, state: g.state }, 'aria-label': `guest ${g.name} of ${g.source}` },
    h('header', null, toggle,
      h('span', { class: 'kind' }, g.source),
      h('span', { class: 'gu-count hint' }, `${ems.length} emitter${ems.length === 1 ? '' : 's'}`),
      h('span', { class: 'pill ' + (g.state === 'present' ? 'running' : 'other') }, g.state)),
    labelText(g) ? h('p', { class: 'labels' }, labelText(g)) : null,
    where ? h('p', { class: 'hint gu-where' }, where) : null,
    h('ul', { id: listID, class: 'gu-emitters', hidden: !expanded, 'aria-label': `emitters of ${g.name}` },
      ems.length ? ems.map((e) => emitterRow(app, g, e)) : h('li', { class: 'hint' }, 'No emitters: no attach rule matches it.')));
}

function emitterRow(app, g, e) {
  const pill = e.state === 'running' ? 'running' : e.state === 'failed' ? 'failed' : 'other';
  return h('li', { dataset: { id: e.id } },
    h('button', { type: 'button', class: 'linkish', dataset: { focus: 'emitter ' + e.id }, title: 'Open in the stream viewer', 'aria-label': `Open ${e.id} in the stream viewer`,
      onclick: () => app.view && app.view(e.id) }, e.id), ' ',
    h('span', { class: 'kind' }, e.kind), ' ',
    h('span', { class: 'hint' }, 'rule ' + e.rule), ' ',
    h('span', { class: 'pill ' + pill }, e.state),
    e.error ? h('p', { class: 'error-text gu-error' }, e.error) : null);
}
