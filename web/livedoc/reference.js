// The Reference: every route of /openapi.json with its parameters, bodies
// and examples, and a "Try it" that sends the real request.
import { $, h, paragraphs, prettyJSON, richText } from './dom.js';
import { exchange, openapi } from './api.js';
import { exampleFor, schemaBox, curlCommand, curlBlock, opKey, toc, showRoute, afterFilter } from './refextras.js';
import { errorView } from './failure.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** resolve follows local $refs (the document uses #/components/... only). */
function resolver(doc) {
  const get = (ref) => ref.slice(2).split('/').reduce((o, k) => (o ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
  const resolve = (v, depth = 0) => {
    if (!v || typeof v !== 'object' || depth > 20) return v;
    if (Array.isArray(v)) return v.map((x) => resolve(x, depth + 1));
    if (typeof v.$ref === 'string') return resolve(get(v.$ref), depth + 1);
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === 'schema' || k === 'properties' ? x : resolve(x, depth + 1);
    return out;
  };
  return { resolve, get };
}

/** firstExample picks an example of a media type object. */
function firstExample(media) {
  if (!media) return undefined;
  if (media.example !== undefined) return media.example;
  if (media.examples) {
    const first = Object.values(media.examples)[0];
    if (first && first.value !== undefined) return first.value;
  }
  return undefined;
}

function exampleText(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

export function initReference(app) {
  let loaded = false;
  app.onShow('reference', (on) => {
    if (on && !loaded) { loaded = true; load(app); }
  });
  $('ref-filter').addEventListener('input', (e) => filter(e.target.value));
  window.addEventListener('hashchange', () => showRoute());
}

async function load(app) {
  const list = $('ref-list');
  let doc;
  try {
    doc = await openapi();
  } catch (e) {
    list.replaceChildren(h('p', { class: 'error-text', role: 'alert' }, 'Cannot load /openapi.json: ' + e.message));
    return;
  }
  const { resolve, get } = resolver(doc);
  const contents = new Map(); // tag -> [{key, method, path}]
  $('ref-intro').replaceChildren(...paragraphs(doc.info && doc.info.description));
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const op = resolve(item[m]);
      const params = [...(resolve(item.parameters) || []), ...(op.parameters || [])];
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!groups.has(tag)) { groups.set(tag, []); contents.set(tag, []); }
      groups.get(tag).push(renderOp(app, m, path, op, params, resolve, get));
      contents.get(tag).push({ key: opKey(m, path, op), method: m, path });
    }
  }
  const out = [];
  for (const [tag, ops] of groups) {
    out.push(h('section', { class: 'tag-group', 'aria-label': tag + ' routes' }, h('h3', null, tag), ops));
  }
  list.replaceChildren(h('div', { class: 'ref-layout' }, toc(contents),
    h('div', null, h('p', { id: 'ref-none', class: 'ref-none', role: 'status', hidden: true }), out)));
  list.setAttribute('aria-busy', 'false');
  filter($('ref-filter').value);
  showRoute();
}

function filter(q) {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  for (const op of document.querySelectorAll('details.op')) {
    const hay = op.dataset.search;
    op.hidden = !words.every((w) => hay.includes(w));
  }
  for (const g of document.querySelectorAll('.tag-group')) {
    g.hidden = !g.querySelector('details.op:not([hidden])');
  }
  afterFilter(q);
}

let opSeq = 0;

function renderOp(app, method, path, op, params, resolve, get) {
  const id = 'op' + (++opSeq);
  const responses = op.responses || {};
  const isWS = '101' in responses;
  const isSSE = Object.values(responses).some((r) => r && r.content && r.content['text/event-stream']);
  const inputs = params.map((p) => paramField(id, p));
  const media = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
  const bodyBox = media ? bodyField(id, media, op.requestBody.required) : null;
  const result = h('div', { class: 'result', 'aria-live': 'polite', hidden: true });
  const tryBtn = h('button', { type: 'submit' }, isWS ? 'Open in WebSocket console' : 'Try it');
  const form = h('form', { class: 'try', novalidate: true },
    inputs.length ? [h('h4', null, 'Parameters'), h('div', { class: 'params' }, inputs.map((f) => f.nodes))] : null,
    bodyBox ? [h('h4', null, 'Request body' + (op.requestBody.required ? ' (required)' : '')), bodyBox.nodes] : null,
    h('div', { class: 'buttons' }, tryBtn,
      isSSE ? h('span', { class: 'hint' }, 'A stream: read for 3 s, then cut. Live view: the Live streams tab.') : null),
    result);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const url = buildURL(path, inputs);
    if (!url) return;
    if (isWS) { app.openSocket(url.path); return; }
    send(method, url, bodyBox, result, tryBtn);
  });
  const kind = isWS ? 'ws' : isSSE ? 'sse' : '';
  const curl = curlBlock(form, () => curlCommand(method, path, inputs, bodyBox ? bodyBox.ta.value : '', kind));
  const summary = h('summary', null,
    h('span', { class: 'method ' + method }, method.toUpperCase()), h('code', null, path),
    h('span', { class: 'op-summary' }, richText(op.summary || '')));
  return h('details', { class: 'op', id, dataset: { key: opKey(method, path, op), search: `${method} ${path} ${op.summary || ''} ${op.operationId || ''}`.toLowerCase() } },
    summary,
    h('div', { class: 'op-body' },
      paragraphs(op.description),
      media ? schemaBox(media.schema, get, 'Request body schema') : null,
      form,
      curl,
      h('h4', null, 'Responses'),
      h('ul', { class: 'responses' }, Object.entries(responses).map(([code, r]) => renderResponse(code, resolve(r), get)))));
}

function paramField(opId, p) {
  const fid = `${opId}-${p.in}-${p.name}`;
  const schema = p.schema || {};
  const ex = p.example !== undefined ? p.example : schema.example;
  const placeholder = ex !== undefined ? String(Array.isArray(ex) ? ex.join(',') : ex)
    : schema.default !== undefined ? 'default ' + schema.default : '';
  let input;
  if (Array.isArray(schema.enum)) {
    input = h('select', { id: fid }, h('option', { value: '' }, '(none)'), schema.enum.map((v) => h('option', { value: String(v) }, String(v))));
  } else {
    input = h('input', { id: fid, placeholder, spellcheck: 'false' });
    if (p.in === 'path' && ex !== undefined) input.value = String(ex);
  }
  const err = h('p', { class: 'field-error', id: fid + '-err' });
  const hint = h('p', { class: 'hint', id: fid + '-hint' },
    `${p.in}${p.required ? ', required' : ''}${schema.type ? ', ' + schema.type : ''}`, p.description ? [' — ', richText(p.description)] : null);
  input.setAttribute('aria-describedby', `${fid}-hint ${fid}-err`);
  if (p.required) input.required = true;
  return {
    p, input, err,
    nodes: [h('label', { for: fid }, p.name), input, hint, err],
  };
}

function bodyField(opId, media, required) {
  const fid = opId + '-body';
  const ta = h('textarea', { id: fid, rows: 5, spellcheck: 'false', 'aria-label': 'Request body (JSON)' });
  const ex = firstExample(media);
  if (ex !== undefined) ta.value = exampleText(ex);
  const nodes = [];
  if (media.examples && Object.keys(media.examples).length > 1) {
    const sel = h('select', { id: fid + '-ex', onchange: (e) => { ta.value = exampleText(media.examples[e.target.value].value); } },
      Object.keys(media.examples).map((k) => h('option', { value: k }, k)));
    nodes.push(h('label', { for: fid + '-ex' }, 'Example '), sel);
  }
  nodes.push(ta);
  return { ta, required, nodes };
}

function renderResponse(code, r, get) {
  const media = r && r.content ? Object.entries(r.content) : [];
  const ex = media.map(([type, m]) => [type, exampleFor(code, m)]).find(([, v]) => v !== undefined);
  const json = r && r.content && r.content['application/json'];
  const cls = 'code c' + code[0];
  return h('li', { dataset: { code } }, h('span', { class: cls }, code), ' ', richText((r && r.description) || ''),
    media.length ? h('span', { class: 'hint' }, ' (' + media.map(([t]) => t).join(', ') + ')') : null,
    json && json.schema ? schemaBox(json.schema, get) : null,
    ex ? h('pre', null, typeof ex[1] === 'string' ? ex[1] : JSON.stringify(ex[1], null, 2)) : null);
}

/** buildURL fills path parameters and the query; a missing required path
 * parameter is shown next to its field. */
function buildURL(path, inputs) {
  let ok = true;
  const query = new URLSearchParams();
  const headers = {};
  let out = path;
  for (const f of inputs) {
    const v = f.input.value.trim();
    f.err.textContent = '';
    f.input.removeAttribute('aria-invalid');
    if (f.p.in === 'path') {
      if (!v) { f.err.textContent = 'required'; f.input.setAttribute('aria-invalid', 'true'); ok = false; continue; }
      out = out.replace('{' + f.p.name + '}', encodeURIComponent(v));
    } else if (v && f.p.in === 'query') {
      if (f.p.schema && f.p.schema.type === 'array') v.split(',').forEach((x) => query.append(f.p.name, x.trim()));
      else query.append(f.p.name, v);
    } else if (v && f.p.in === 'header') {
      headers[f.p.name] = v;
    }
  }
  if (!ok) { inputs.find((f) => f.input.getAttribute('aria-invalid')).input.focus(); return null; }
  const qs = query.toString();
  return { path: out + (qs ? '?' + qs : ''), headers };
}

async function send(method, url, bodyBox, result, btn) {
  const headers = { ...url.headers };
  let body;
  if (bodyBox && bodyBox.ta.value.trim()) {
    body = bodyBox.ta.value;
    headers['Content-Type'] = 'application/json';
  }
  btn.disabled = true;
  result.hidden = false;
  result.className = 'result';
  result.replaceChildren(h('p', null, `${method.toUpperCase()} ${url.path} …`));
  try {
    const r = await exchange(method.toUpperCase(), url.path, { headers, body });
    result.className = 'result ' + (r.status >= 200 && r.status < 400 ? 'ok' : 'bad');
    result.replaceChildren(...renderExchange(method, url.path, r));
  } catch (e) {
    result.className = 'result bad';
    result.replaceChildren(h('p', { class: 'error-text' }, 'Request failed: ' + e.message));
  } finally {
    btn.disabled = false;
  }
}

function renderExchange(method, path, r) {
  const status = r.type === 'opaqueredirect'
    ? h('p', null, h('span', { class: 'code c3' }, '3xx'), ' redirect (the browser does not show a redirect it was told not to follow)')
    : h('p', null, h('span', { class: 'code c' + String(r.status)[0] }, String(r.status)), ' ', r.statusText || '');
  let err = null; // an error answer, said as a sentence above the raw body
  if (r.status >= 400) { try { const b = JSON.parse(r.text); if (b && b.error) err = errorView(r.status, b); } catch { /* not JSON */ } }
  return [
    h('p', { class: 'mono' }, `${method.toUpperCase()} ${path}`),
    status,
    ...(err ? [err] : []),
    h('p', { class: 'hint' }, `headers after ${r.headMs.toFixed(1)} ms, body after ${r.totalMs.toFixed(1)} ms`,
      r.cut ? ' — stream cut by the page' : ''),
    h('details', null, h('summary', null, `Headers (${r.headers.length})`),
      h('dl', null, r.headers.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]))),
    r.text ? h('pre', { tabindex: '0', 'aria-label': 'Response body' }, prettyJSON(r.text)) : h('p', { class: 'hint' }, '(empty body)'),
  ];
}
