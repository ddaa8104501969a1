// Queues console. Queues (Zaqar-style: create, post, claim, delete under
// /v2/queues) appear here once this node's API document lists them; until
// then the tab says so, without probing routes that do not exist.
import { $, h } from './dom.js';
import { openapi } from './api.js';

export function initQueues(app) {
  let loaded = null; // the console's render, once started
  app.onShow('queues', (on) => {
    if (!on) return;
    if (loaded) { loaded.then((c) => c && c.shown()); return; }
    loaded = render();
  });
}

async function render() {
  const root = $('q-root');
  let paths = [];
  try {
    paths = Object.keys((await openapi()).paths || {}).filter((p) => p.startsWith('/v2/'));
  } catch { /* treated as: no queues */ }
  if (!paths.length) {
    root.replaceChildren(h('div', { class: 'placeholder' },
      h('p', null, h('strong', null, 'Queues are not served by this node yet.')),
      h('p', null, 'When they are, this console creates queues, posts messages, claims and deletes them over ',
        h('code', null, '/v2/queues'), ' and follows them over ', h('code', null, '/v2/ws'), '.')));
    return null;
  }
  const { initQueueConsole } = await import('./queueconsole.js');
  return initQueueConsole(root, paths);
}
