// Plugins: one row per plugin process, refreshed every 2 s while shown.
import { $, h, clock, pollWhileShown } from './dom.js';
import { api } from './api.js';

export function initPlugins(app) {
  pollWhileShown(app, 'plugins', refresh);
}

async function refresh() {
  const status = $('pl-status');
  try {
    const r = await api('GET', '/api/v1/plugins');
    const rows = (r.items || []).map((p) => h('tr', null,
      h('th', { scope: 'row' }, p.name),
      h('td', null, p.version || ''),
      h('td', null, h('span', { class: 'pill ' + (['running', 'failed', 'broken'].includes(p.state) ? p.state : 'other') }, p.state)),
      h('td', { class: 'num' }, p.pid ? String(p.pid) : '–'),
      h('td', { class: 'num' }, String(p.restarts)),
      h('td', { class: 'num' }, String(p.instances)),
      h('td', null, p.last_error || '')));
    $('pl-table').replaceChildren(h('table', null,
      h('caption', { class: 'hint' }, 'Plugin processes (one per kind)'),
      h('thead', null, h('tr', null, ['Plugin', 'Version', 'State', 'PID', 'Restarts', 'Instances', 'Last error'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows)));
    status.className = 'status';
    status.textContent = 'refreshed ' + clock(new Date());
  } catch (e) {
    status.className = 'status error';
    status.textContent = 'Cannot list plugins: ' + e.message;
  }
}
