// Cluster: the nodes this node knows, with their health, address and
// emitter count, and the NATS routes and JetStream state under them (GET
// /api/v1/cluster). Refreshed every 2 s while shown.
import { $, h, clock, pollWhileShown } from './dom.js';
import { api } from './api.js';

export function initCluster(app) {
  pollWhileShown(app, 'cluster', refresh);
}

async function refresh() {
  const status = $('cl-status');
  try {
    const c = await api('GET', '/api/v1/cluster');
    $('cl-summary').replaceChildren(...summary(c));
    $('cl-nodes').replaceChildren(nodesTable(c.nodes || []));
    $('cl-nats').replaceChildren(...natsState(c.nats));
    status.className = 'status';
    status.textContent = 'refreshed ' + clock(new Date());
  } catch (e) {
    status.className = 'status error';
    status.textContent = 'Cannot read the cluster: ' + e.message;
  }
}

const modes = {
  single: 'single node (no cluster)',
  embedded: 'cluster, NATS embedded in each node',
  external: 'cluster on an external NATS',
};

function stat(label, value, id) {
  return h('div', null, h('dt', null, label), h('dd', { id }, value));
}

function summary(c) {
  const up = (c.nodes || []).filter((n) => n.health === 'up').length;
  return [
    stat('Mode', modes[c.mode] || c.mode, 'cl-mode'),
    c.name ? stat('Cluster', c.name) : null,
    stat('This node', c.node),
    stat('Nodes up', `${up} of ${(c.nodes || []).length}`, 'cl-up'),
    c.replicas ? stat('JetStream replicas', String(c.replicas)) : null,
  ].filter(Boolean); // replaceChildren would show a null as text
}

function nodesTable(nodes) {
  const rows = nodes.map((n) => h('tr', { dataset: { node: n.name } },
    h('th', { scope: 'row' }, n.name, n.self ? h('span', { class: 'hint' }, ' (this node)') : null),
    h('td', null, h('span', { class: 'pill ' + (n.health === 'up' ? 'running' : 'failed') }, n.health)),
    h('td', null, n.advertise ? h('a', { href: n.advertise + '/livedoc#cluster' }, n.advertise) : '–'),
    h('td', { class: 'num' }, String(n.emitters)),
    h('td', null, n.version || ''),
    h('td', null, n.last_seen ? clock(n.last_seen) : '')));
  return h('table', null,
    h('caption', { class: 'hint' }, 'Nodes (down: not heard from for three heartbeats)'),
    h('thead', null, h('tr', null, ['Node', 'Health', 'Advertised at', 'Emitters', 'Version', 'Last seen'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows));
}

function natsState(n) {
  if (!n) return [h('p', { class: 'hint', id: 'cl-no-nats' }, 'No NATS: a single node keeps everything to itself.')];
  const js = n.jetstream || {};
  const routes = n.routes || [];
  return [
    h('dl', { class: 'stats', 'aria-label': 'NATS connection and JetStream' },
      stat('Connected', n.connected ? 'yes' : 'no', 'cl-connected'),
      stat('Server', n.server || '–'),
      stat('JetStream', js.enabled ? 'enabled' : 'off'),
      stat('Meta leader', js.meta_leader || '–', 'cl-leader'),
      stat('Streams', String(js.streams ?? 0)),
      stat('Consumers', String(js.consumers ?? 0)),
      stat('Stored', bytes(js.bytes || 0))),
    routes.length
      ? h('table', { id: 'cl-routes' },
        h('caption', { class: 'hint' }, 'Routes of this node\'s NATS server'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Remote node'), h('th', { scope: 'col' }, 'Address'))),
        h('tbody', null, routes.map((r) => h('tr', null, h('th', { scope: 'row' }, r.remote), h('td', null, r.addr || '')))))
      : h('p', { class: 'hint' }, 'No routes: this node connects to an external NATS, or has no peer yet.'),
  ];
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}
