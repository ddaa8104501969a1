// Queue console (Zaqar v2 over REST): create a queue, post messages, claim
// them, delete claimed messages and the queue. Loaded only when the node's
// API document lists /v2 routes.
import { h, clock, prettyJSON, trimList, appendScrolled } from './dom.js';
import { api } from './api.js';

/** uuid4 works in insecure contexts too (crypto.randomUUID does not). */
function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function input(id, label, value, attrs = {}) {
  const el = h('input', { id, value, spellcheck: 'false', ...attrs });
  return { el, nodes: [h('label', { for: id }, label), el] };
}

export function initQueueConsole(root) {
  const project = input('q-project', 'Project (X-Project-Id)', 'livedoc');
  // With auth on the project is the token's tenant: it follows the token
  // (whoami) while the person has not typed another.
  let projectDefault = 'livedoc';
  const followToken = async () => {
    let want = 'livedoc';
    try { want = (await api('GET', '/api/v1/whoami')).tenant || want; } catch { /* no token yet: requests say so */ }
    if (project.el.value.trim() === projectDefault) project.el.value = want;
    projectDefault = want;
  };
  const client = input('q-client', 'Client-ID', uuid4());
  const name = input('q-name', 'Queue', 'livedoc-demo', { pattern: '[a-zA-Z0-9_-]{1,64}' });
  const body = h('textarea', { id: 'q-body', rows: 3, spellcheck: 'false' }, '{"event": "hello", "n": 1}');
  const ttl = input('q-ttl', 'TTL (s)', '300', { inputmode: 'numeric' });
  const limit = input('q-limit', 'Claim up to', '5', { inputmode: 'numeric' });
  const claimed = h('ul', { id: 'q-claimed', class: 'responses', 'aria-label': 'Claimed messages' });
  const log = h('ol', { id: 'q-log', class: 'log', 'aria-label': 'Queue requests, newest last' });

  const headers = () => ({ 'X-Project-Id': project.el.value.trim(), 'Client-ID': client.el.value.trim() });
  const qpath = () => '/v2/queues/' + encodeURIComponent(name.el.value.trim());
  const note = (what, text, bad) => {
    appendScrolled(log, h('li', { class: bad ? 'gap' : '' }, h('span', null, what),
      h('span', null, clock(new Date())), h('span', null, text)));
    trimList(log, 200);
  };
  const run = async (what, method, path, payload) => {
    try {
      const r = await api(method, path, payload, headers());
      note(what, r == null ? 'ok' : prettyJSON(JSON.stringify(r)));
      return r;
    } catch (e) {
      const more = (e.fields || []).filter((f) => !e.message.includes(f.message)).map((f) => `; ${f.field}: ${f.message}`);
      note(what, `${e.status || ''} ${e.message}${more.join('')}`, true);
      return undefined;
    }
  };
  const num = (el, def) => { const n = parseInt(el.value, 10); return Number.isFinite(n) ? n : def; };

  const showClaim = (r) => {
    claimed.replaceChildren();
    for (const m of (r && r.messages) || []) {
      const del = h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete message ${m.id}` }, 'Delete');
      del.addEventListener('click', async () => {
        if ((await run('delete', 'DELETE', m.href)) !== undefined) del.closest('li').remove();
      });
      claimed.append(h('li', null, h('code', null, m.id), ' ', h('span', { class: 'mono' }, JSON.stringify(m.body)), ' ', del));
    }
    if (!claimed.childElementCount) claimed.append(h('li', { class: 'hint' }, 'nothing to claim'));
  };

  const button = (id, text, fn, cls) => h('button', { type: 'button', id, class: cls || '', onclick: fn }, text);
  root.replaceChildren(h('div', { class: 'cols' },
    h('section', { class: 'card', 'aria-labelledby': 'q-title' },
      h('h3', { id: 'q-title' }, 'Queue console'),
      h('div', { class: 'grid-form' }, project.nodes, client.nodes, name.nodes,
        h('div', { class: 'buttons' },
          button('q-create', 'Create queue', () => run('create', 'PUT', qpath(), {})),
          // 20: the largest page the queues API serves.
          button('q-list', 'List queues', () => run('list', 'GET', '/v2/queues?limit=20'), 'quiet'),
          button('q-delete', 'Delete queue', () => run('delete queue', 'DELETE', qpath()), 'danger'))),
      h('h4', null, h('label', { for: 'q-body' }, 'Message body (JSON)')), body,
      h('div', { class: 'grid-form' }, ttl.nodes, h('div', { class: 'buttons' },
        button('q-post', 'Post', () => {
          let b;
          try { b = JSON.parse(body.value); } catch { note('post', 'the body is not valid JSON', true); return; }
          run('post', 'POST', qpath() + '/messages', { messages: [{ ttl: num(ttl.el, 300), body: b }] });
        }))),
      h('div', { class: 'grid-form' }, limit.nodes, h('div', { class: 'buttons' },
        button('q-claim', 'Claim', async () => showClaim(await run('claim', 'POST', `${qpath()}/claims?limit=${num(limit.el, 5)}`, { ttl: 60, grace: 30 }))))),
      claimed),
    h('section', { class: 'card', 'aria-labelledby': 'q-log-title' }, h('h3', { id: 'q-log-title' }, 'Requests'), log)));
  followToken();
  return { shown: followToken };
}
