// Node overview, the first tab: every emitter with its state, owner node,
// events/s (with a sparkline of the last minute), last event and its
// plugin's restarts and last error; the plugins with their health; the
// queues of a project with their depth. Polled every second while shown
// (GET /api/v1/emitters carries each emitter's state and activity).
import { $, h, clock, pollWhileShown } from './dom.js';
import { api } from './api.js';
import { sparkline } from './chart.js';

const HISTORY = 60; // sparkline samples (one per poll)
const rates = new Map(); // emitter id -> recent events/s samples
let queueTick = 0;

export function initOverview(app) {
  const root = $('ov-root');
  root.replaceChildren(
    h('dl', { id: 'ov-summary', class: 'stats', 'aria-label': 'Node summary' }),
    h('section', { class: 'card', 'aria-labelledby': 'ov-em-title' },
      h('h3', { id: 'ov-em-title' }, 'Emitters'),
      h('div', { id: 'ov-emitters', class: 'ov-grid', 'aria-busy': 'true' }, h('p', { class: 'hint' }, 'Loading…'))),
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'ov-pl-title' },
        h('h3', { id: 'ov-pl-title' }, 'Plugins'),
        h('ul', { id: 'ov-plugins', class: 'ov-list' })),
      h('section', { class: 'card', 'aria-labelledby': 'ov-q-title' },
        h('h3', { id: 'ov-q-title' }, 'Queues'),
        h('form', { class: 'filters', id: 'ov-q-form', onsubmit: (e) => { e.preventDefault(); queueTick = 0; refresh(app); } },
          h('label', { for: 'ov-project' }, 'Project'),
          h('input', { id: 'ov-project', value: 'livedoc', spellcheck: 'false' }),
          h('button', { type: 'submit', class: 'small' }, 'Show')),
        h('ul', { id: 'ov-queues', class: 'ov-list' }))));
  pollWhileShown(app, 'overview', () => refresh(app), 1000);
}

async function refresh(app) {
  const status = $('ov-status');
  const [em, pl] = await Promise.allSettled([
    api('GET', '/api/v1/emitters?limit=1000'), api('GET', '/api/v1/plugins')]);
  const plugins = pl.status === 'fulfilled' ? pl.value.items || [] : [];
  if (em.status === 'fulfilled') {
    renderEmitters(app, em.value.items || [], plugins);
    status.className = 'status';
    status.textContent = 'live · refreshed ' + clock(new Date());
  } else {
    status.className = 'status error';
    status.textContent = 'Cannot list emitters: ' + em.reason.message;
  }
  if (pl.status === 'fulfilled') renderPlugins(plugins);
  // Queue depths cost a request per queue: every third poll.
  if (queueTick++ % 3 === 0) refreshQueues();
}

function stat(label, value, id) {
  return h('div', null, h('dt', null, label), h('dd', { id }, value));
}

function rateText(r) {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

/** ago says how long ago an ISO time was, coarsely. */
function ago(iso) {
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!isFinite(s)) return '–';
  if (s < 1) return 'just now';
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function renderEmitters(app, items, plugins) {
  const byName = new Map(plugins.map((p) => [p.name, p]));
  const seen = new Set();
  let total = 0, running = 0;
  const cards = items.map((e) => {
    seen.add(e.id);
    const a = e.activity;
    const r = a ? a.events_per_sec : 0;
    total += r;
    if (e.state === 'running') running++;
    const hist = rates.get(e.id) || [];
    hist.push(r);
    if (hist.length > HISTORY) hist.shift();
    rates.set(e.id, hist);
    return card(app, e, byName.get(e.kind), hist);
  });
  for (const id of rates.keys()) if (!seen.has(id)) rates.delete(id);
  const box = $('ov-emitters');
  box.replaceChildren(...(cards.length ? cards : [h('p', { class: 'hint' }, 'No emitters yet: create one in the Emitters tab.')]));
  box.setAttribute('aria-busy', 'false');
  const up = plugins.filter((p) => p.state === 'running').length;
  $('ov-summary').replaceChildren(
    stat('Emitters', `${running} of ${items.length} running`, 'ov-running'),
    stat('Events/s', rateText(total), 'ov-rate'),
    stat('Plugins up', `${up} of ${plugins.length}`, 'ov-plugins-up'));
}

function card(app, e, plugin, hist) {
  const a = e.activity;
  const state = e.state || 'unknown';
  const pill = state === 'running' ? 'running' : state === 'unknown' ? 'other' : 'failed';
  const rate = a ? rateText(a.events_per_sec) : '–';
  return h('article', { class: 'ov-card', dataset: { id: e.id }, 'aria-label': `emitter ${e.id}` },
    h('header', null,
      h('button', { type: 'button', class: 'linkish', onclick: () => app.view && app.view(e.id), title: 'Open in the stream viewer' }, e.id),
      h('span', { class: 'kind' }, e.kind),
      h('span', { class: 'pill ' + pill }, state)),
    h('div', { class: 'ov-rate' },
      sparkline(hist, { label: `events per second of ${e.id}, last ${hist.length} s` }),
      h('span', null, h('strong', { class: 'ov-eps' }, rate), ' ev/s')),
    h('dl', { class: 'ov-facts' },
      fact('Node', e.node || 'this node'),
      fact('Last event', a && a.last_event_at ? h('time', { datetime: a.last_event_at, title: a.last_event_at }, ago(a.last_event_at)) : '–', 'ov-last'),
      fact('Head', a ? '#' + a.head : '–'),
      fact('Watchers', a ? String(a.subscribers) : '–'),
      plugin ? fact('Plugin restarts', String(plugin.restarts), 'ov-restarts') : null,
      plugin && plugin.last_error ? fact('Plugin error', plugin.last_error, 'ov-error') : null));
}

function fact(label, value, cls) {
  return h('div', { class: cls }, h('dt', null, label), h('dd', null, value));
}

function renderPlugins(plugins) {
  $('ov-plugins').replaceChildren(...(plugins.length ? plugins.map((p) => h('li', { dataset: { plugin: p.name } },
    h('span', { class: 'pill ' + (p.state === 'running' ? 'running' : ['failed', 'broken'].includes(p.state) ? 'failed' : 'other') }, p.state),
    ' ', h('strong', null, p.name), ' ', h('span', { class: 'hint' }, `v${p.version || '?'} · pid ${p.pid || '–'} · ${p.instances} instance${p.instances === 1 ? '' : 's'} · ${p.restarts} restart${p.restarts === 1 ? '' : 's'}`),
    p.last_error ? h('p', { class: 'error-text ov-plugin-error' }, p.last_error) : null))
    : [h('li', { class: 'hint' }, 'No plugins.')]));
}

async function refreshQueues() {
  const list = $('ov-queues');
  const project = $('ov-project').value.trim();
  if (!project) { list.replaceChildren(h('li', { class: 'hint' }, 'Name a project to list its queues.')); return; }
  const headers = { 'X-Project-Id': project, 'Client-ID': clientID() };
  try {
    const r = await api('GET', '/v2/queues?limit=20', undefined, headers);
    const queues = r.queues || [];
    if (!queues.length) { list.replaceChildren(h('li', { class: 'hint' }, `No queues in project ${project}.`)); return; }
    const stats = await Promise.all(queues.map((q) => api('GET', `/v2/queues/${encodeURIComponent(q.name)}/stats`, undefined, headers).catch(() => null)));
    list.replaceChildren(...queues.map((q, i) => {
      const m = (stats[i] && stats[i].messages) || null;
      return h('li', { dataset: { queue: q.name } }, h('strong', null, q.name), ' ',
        m ? h('span', { class: 'ov-depth' }, `${m.total} message${m.total === 1 ? '' : 's'}`) : h('span', { class: 'hint' }, 'depth unknown'),
        m ? h('span', { class: 'hint' }, ` (${m.free} free, ${m.claimed} claimed${m.oldest ? `, oldest ${m.oldest.age} s` : ''})`) : null);
    }));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'error-text' }, 'Cannot list queues: ' + e.message));
  }
}

let cid = '';
function clientID() {
  if (!cid) {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
    cid = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }
  return cid;
}
