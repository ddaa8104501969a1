// Reference extras: schemas rendered from the document, the example that
// belongs to a response's status, a copyable curl for every operation, a
// table of contents with a link per route (#reference/OPERATION), and a
// "no match" line when the filter hides everything.
import { h, richText } from './dom.js';
import { auth } from './api.js';

/** exampleFor picks the example of a media type for status code: the one
 * named after the status (a shared Error response carries one per status),
 * else the single example, else the first. */
export function exampleFor(code, media) {
  if (!media) return undefined;
  const named = media.examples && media.examples[code];
  if (named && named.value !== undefined) return named.value;
  if (media.example !== undefined) return media.example;
  if (media.examples) {
    const first = Object.values(media.examples)[0];
    if (first && first.value !== undefined) return first.value;
  }
  return undefined;
}

const refName = (ref) => ref.split('/').pop();

/** typeText is a schema's type in a few words ("array of Envelope"). */
function typeText(s, get) {
  if (!s || typeof s !== 'object') return 'any';
  if (s.$ref) return refName(s.$ref);
  if (s.type === 'array') return 'array of ' + typeText(s.items, get);
  let t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || (s.properties ? 'object' : 'any');
  if (s.format) t += ` (${s.format})`;
  if (s.enum) t += ': ' + s.enum.join(' | ');
  if (s.const !== undefined) t += ' = ' + JSON.stringify(s.const);
  return t;
}

/** schemaView renders a JSON Schema of the document: properties with
 * type, required mark and description, nested objects two levels deep
 * ($refs followed with get). */
export function schemaView(schema, get, depth = 0) {
  let s = schema;
  if (s && s.$ref) s = get(s.$ref) || {};
  if (s && s.type === 'array' && s.items) {
    const items = s.items.$ref ? get(s.items.$ref) || {} : s.items;
    if (items.properties && depth < 2) return h('div', { class: 'schema' }, h('div', null, 'array of ' + typeText(s.items, get) + ':'), schemaView(items, get, depth + 1));
  }
  if (!s || !s.properties) {
    return h('div', { class: 'schema' }, h('span', { class: 'ptype' }, typeText(schema, get)), s && s.description ? [' — ', h('span', { class: 'pdesc' }, richText(s.description))] : null);
  }
  const req = new Set(s.required || []);
  return h('div', { class: 'schema' }, Object.entries(s.properties).map(([name, p]) => {
    const target = p.$ref ? get(p.$ref) || {} : p;
    const nested = depth < 2 && (target.properties || (target.type === 'array' && target.items && (target.items.$ref || target.items.properties)));
    return h('div', { class: 'prop' },
      h('span', { class: 'pname' }, name), ' ', h('span', { class: 'ptype' }, typeText(p, get)),
      req.has(name) ? h('span', { class: 'req' }, ' required') : null,
      target.description ? [' — ', h('span', { class: 'pdesc' }, richText(target.description))] : null,
      nested ? schemaView(p, get, depth + 1) : null);
  }));
}

/** schemaBox is a collapsed "Schema" disclosure. */
export function schemaBox(schema, get, label = 'Schema') {
  if (!schema) return null;
  return h('details', { class: 'schema-box' }, h('summary', null, label), schemaView(schema, get));
}

const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** curlCommand is the curl of one call as the form stands: path
 * parameters filled (or left as {name}), the query, header parameters,
 * the token when one is set (as $TOKEN, never the secret), the body. */
export function curlCommand(method, path, inputs, body, kind) {
  const query = new URLSearchParams();
  const headers = [];
  let p = path;
  for (const f of inputs) {
    const v = f.input.value.trim();
    if (f.p.in === 'path') { if (v) p = p.replace('{' + f.p.name + '}', encodeURIComponent(v)); continue; }
    if (!v) continue;
    if (f.p.in === 'query') {
      if (f.p.schema && f.p.schema.type === 'array') v.split(',').forEach((x) => query.append(f.p.name, x.trim()));
      else query.append(f.p.name, v);
    } else if (f.p.in === 'header') headers.push(`${f.p.name}: ${v}`);
  }
  const qs = query.toString();
  const url = location.origin + p + (qs ? '?' + qs : '');
  const parts = ['curl', kind === 'sse' ? '-N' : '-sS'];
  if (kind === 'ws') {
    // curl speaks the handshake: the answer is the 101 and its headers.
    parts.push('-i', '-N', '-H', quote('Connection: Upgrade'), '-H', quote('Upgrade: websocket'),
      '-H', quote('Sec-WebSocket-Version: 13'), '-H', quote('Sec-WebSocket-Key: c2lkZXN0cmVhbS1saXZlZG9j'));
  } else if (method !== 'get') {
    parts.push('-X', method.toUpperCase());
  }
  if (auth.token) parts.push('-H', '"Authorization: Bearer $TOKEN"');
  for (const hd of headers) parts.push('-H', quote(hd));
  if (body && body.trim()) parts.push('-H', quote('Content-Type: application/json'), '--data-raw', quote(body.trim()));
  parts.push(quote(url));
  return parts.join(' ');
}

/** curlBlock shows the curl of a form and keeps it current as the form
 * changes; Copy puts it on the clipboard. */
export function curlBlock(form, make) {
  const pre = h('pre', { class: 'curl-cmd', tabindex: '0', 'aria-label': 'curl command' });
  const status = h('span', { class: 'hint', role: 'status' });
  const update = () => { pre.textContent = make(); };
  const copy = h('button', { type: 'button', class: 'small', onclick: async () => {
    update();
    try {
      await navigator.clipboard.writeText(pre.textContent);
      status.textContent = 'copied';
    } catch {
      // No clipboard (a page not served over https or localhost): select
      // the text so Ctrl+C copies it.
      getSelection().selectAllChildren(pre);
      status.textContent = 'selected: press Ctrl+C';
    }
  } }, 'Copy');
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  return h('div', { class: 'curl-box' }, h('h4', null, 'curl'), h('div', { class: 'curl' }, pre, copy), status);
}

/** opKey names an operation in the address: its operationId, else
 * method and path. */
export function opKey(method, path, op) {
  return op.operationId || (method + path.replace(/[^a-zA-Z0-9]+/g, '-'));
}

/** toc builds the contents: per tag, a link per route. */
export function toc(groups) {
  return h('nav', { class: 'ref-toc card', 'aria-label': 'API contents' },
    [...groups].map(([tag, ops]) => [
      h('h3', null, tag),
      h('ul', null, ops.map((o) => h('li', { dataset: { key: o.key } },
        h('a', { href: '#reference/' + o.key }, h('span', { class: 'method ' + o.method }, o.method.toUpperCase()), h('code', null, o.path))))),
    ]));
}

/** showRoute opens and scrolls to the operation the address names
 * (#reference/KEY); false when it names none. */
export function showRoute(hash = location.hash) {
  const m = /^#reference\/(.+)$/.exec(hash);
  if (!m) return false;
  const el = document.querySelector(`details.op[data-key="${CSS.escape(decodeURIComponent(m[1]))}"]`);
  if (!el) return false;
  el.hidden = false;
  el.open = true;
  el.scrollIntoView({ block: 'start' });
  el.querySelector('summary').focus({ preventScroll: true });
  return true;
}

/** filterTOC hides contents entries whose operation the filter hid and
 * says so when nothing matches. */
export function afterFilter(q) {
  for (const li of document.querySelectorAll('.ref-toc li')) {
    const op = document.querySelector(`details.op[data-key="${CSS.escape(li.dataset.key)}"]`);
    li.hidden = !op || op.hidden;
  }
  const none = document.getElementById('ref-none');
  const any = document.querySelector('details.op:not([hidden])');
  if (none) {
    none.hidden = !!any;
    none.textContent = any ? '' : `No route matches “${q.trim()}”.`;
  }
}
