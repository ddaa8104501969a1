// Queue console, loaded only when the node serves /v2 routes. Until a
// dedicated console lands it lists the queue routes; each can be tried in
// the Reference.
import { h } from './dom.js';

export function initQueueConsole(root, paths) {
  root.replaceChildren(h('div', { class: 'card' },
    h('p', null, 'This node serves queues. Try each route in the Reference (filter: ', h('code', null, '/v2'), '):'),
    h('ul', null, paths.map((p) => h('li', null, h('a', { href: '#reference', onclick: () => { document.getElementById('ref-filter').value = p; document.getElementById('ref-filter').dispatchEvent(new Event('input')); } }, h('code', null, p)))))));
}
