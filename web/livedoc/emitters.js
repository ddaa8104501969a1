// Emitters: the list (filtered by kind and guest label) with commands and
// delete, and a create form built from the kind's config schema.
import { $, h, clock } from './dom.js';
import { api, kinds, ApiError } from './api.js';
import { buildConfigFields } from './schemaform.js';

let kindList = [];
const lastResult = new Map(); // emitter id -> text of its last command, kept across refreshes
let configReader = { read: () => ({ config: {}, errors: [] }) };

export function initEmitters(app) {
  let loaded = false;
  app.onShow('emitters', (on) => {
    if (!on) return;
    refreshList(app);
    // Retried on the next show when it failed (e.g. before a token).
    if (!loaded) { loaded = true; loadKinds().then((ok) => { loaded = ok; }); }
  });
  $('em-filter').addEventListener('submit', (e) => { e.preventDefault(); refreshList(app); });
  $('em-kind-filter').addEventListener('change', () => refreshList(app));
  $('em-kind').addEventListener('change', showKind);
  $('em-create').addEventListener('submit', (e) => { e.preventDefault(); create(app); });
}

async function loadKinds() {
  try {
    kindList = await kinds(true);
  } catch (e) {
    $('em-kind-desc').textContent = 'Cannot list kinds: ' + e.message;
    return false;
  }
  const filter = $('em-kind-filter');
  const keep = filter.value;
  filter.replaceChildren(h('option', { value: '' }, 'all kinds'), ...kindList.map((k) => h('option', { value: k.name }, k.name)));
  filter.value = keep;
  $('em-kind').replaceChildren(...kindList.map((k) => h('option', { value: k.name }, k.name + (k.error ? ' (unavailable)' : ''))));
  const preferred = kindList.find((k) => k.name === 'log') || kindList[0];
  if (preferred) $('em-kind').value = preferred.name;
  showKind();
  // Create stays disabled (index.html) until there is a kind to create.
  $('em-submit').disabled = !kindList.length;
  if (!kindList.length) $('em-kind-desc').textContent = 'This node has no emitter kinds: no plugin is running.';
  return true;
}

function showKind() {
  const k = kindList.find((x) => x.name === $('em-kind').value);
  $('em-kind-desc').textContent = k ? [k.description, k.version && 'v' + k.version, k.error].filter(Boolean).join(' · ') : '';
  configReader = buildConfigFields($('em-config'), k && k.config_schema);
  clearErrors();
}

async function refreshList(app) {
  const params = new URLSearchParams({ limit: '1000' });
  if ($('em-kind-filter').value) params.set('kind', $('em-kind-filter').value);
  const guest = $('em-guest-filter').value.trim();
  if (guest) params.append('label', 'guest:' + guest);
  const status = $('em-list-status');
  if (!$('em-list').childElementCount) { status.className = 'status'; status.textContent = 'Loading emitters…'; }
  try {
    const r = await api('GET', '/api/v1/emitters?' + params);
    if (!kindList.length) kindList = await kinds().catch(() => []);
    const filtered = params.has('kind') || params.has('label');
    $('em-list').replaceChildren(...(r.items.length ? r.items.map((e) => row(app, e))
      : [h('p', { class: 'empty' }, filtered ? 'No emitters match these filters.' : 'No emitters yet: create one with the form.')]));
    status.className = 'status';
    status.textContent = `${r.items.length} emitter${r.items.length === 1 ? '' : 's'} · refreshed ${clock(new Date())}`;
  } catch (e) {
    status.className = 'status error';
    status.textContent = 'Cannot list emitters: ' + e.message;
  }
}

function row(app, e) {
  const kind = kindList.find((k) => k.name === e.kind);
  const commands = (kind && kind.commands) || [];
  const out = h('output', { 'aria-live': 'polite', 'aria-label': `result for ${e.id}` }, lastResult.get(e.id) || '');
  const labels = Object.entries(e.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');
  // The shared built-in emitters serve /magic, /time and /fib: the node
  // refuses to delete them, so no Delete is offered.
  const del = e.shared ? null : h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${e.id}` }, 'Delete');
  if (del) del.addEventListener('click', () => remove(app, e.id, del, out));
  return h('article', { class: 'em-row', dataset: { id: e.id }, 'aria-label': `emitter ${e.id}` },
    h('header', null, h('strong', null, e.id), h('span', { class: 'kind' }, e.kind),
      e.shared ? h('span', { class: 'shared', title: 'built in: serves a shared route, cannot be deleted' }, 'shared') : null,
      e.node ? h('span', { class: 'node', title: 'the node that runs it' }, 'on ' + e.node) : null,
      labels ? h('span', { class: 'labels' }, labels) : null),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', class: 'small', onclick: () => app.watch(e.id), 'aria-label': `Watch ${e.id}` }, 'Watch'),
      commands.map((c) => h('button', {
        type: 'button', class: 'small', title: c.description || '', dataset: { command: c.name },
        'aria-label': `${c.name} on ${e.id}`, onclick: () => command(e.id, c.name, out),
      }, c.name)),
      del),
    out);
}

async function command(id, name, out) {
  out.textContent = `${name}…`;
  let text;
  try {
    const r = await api('POST', `/api/v1/emitters/${encodeURIComponent(id)}/commands/${encodeURIComponent(name)}`);
    text = r && typeof r === 'object' && 'position' in r
      ? `${name}: position ${r.position}, value ${r.value}` : `${name}: ${JSON.stringify(r)}`;
  } catch (e) {
    text = `${name} failed: ${e.message}`;
  }
  lastResult.set(id, text);
  // The list may have been redrawn meanwhile: write to the row shown now.
  const live = document.querySelector(`.em-row[data-id="${CSS.escape(id)}"] output`) || out;
  live.textContent = text;
}

async function remove(app, id, btn, out) {
  // Two steps instead of confirm(): no modal, works with the keyboard.
  if (!btn.classList.contains('confirm')) {
    btn.classList.add('confirm');
    btn.textContent = 'Really delete?';
    setTimeout(() => { btn.classList.remove('confirm'); btn.textContent = 'Delete'; }, 4000);
    return;
  }
  try {
    await api('DELETE', '/api/v1/emitters/' + encodeURIComponent(id));
    refreshList(app);
  } catch (e) {
    out.textContent = 'delete failed: ' + e.message;
  }
}

function parseLabels() {
  const labels = {};
  const guest = $('em-guest').value.trim();
  const errors = [];
  for (const part of $('em-labels').value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) { errors.push({ field: 'labels', message: `"${part}" is not key=value` }); continue; }
    labels[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  if (guest) labels.guest = guest;
  return { labels, errors };
}

function retention() {
  const max = $('em-max-events').value.trim();
  const age = $('em-max-age').value.trim();
  const persist = $('em-persist').checked;
  if (persist && !max && !age) return undefined; // the server's default
  const r = { persist };
  if (max) r.max_events = Number(max);
  if (age) r.max_age = age;
  return r;
}

async function create(app) {
  clearErrors();
  const cfg = configReader.read();
  const lab = parseLabels();
  const local = [...cfg.errors, ...lab.errors];
  if (local.length) { showErrors('Fix the marked fields.', local); return; }
  const body = { kind: $('em-kind').value, config: cfg.config };
  const id = $('em-id').value.trim();
  if (id) body.id = id;
  if (Object.keys(lab.labels).length) body.labels = lab.labels;
  const ret = retention();
  if (ret) body.retention = ret;
  const btn = $('em-submit');
  btn.disabled = true;
  try {
    const spec = await api('POST', '/api/v1/emitters', body);
    const done = $('em-created');
    done.replaceChildren(`Created ${spec.id} (${spec.kind}). `,
      h('button', { type: 'button', class: 'small', id: 'em-watch-new', onclick: () => app.watch(spec.id) }, 'Watch its stream'));
    $('em-id').value = '';
    refreshList(app);
  } catch (e) {
    if (e instanceof ApiError) showErrors(e.message, e.fields);
    else showErrors('Request failed: ' + e.message, []);
  } finally {
    btn.disabled = false;
  }
}

function clearErrors() {
  const form = $('em-create');
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  $('em-create-summary').hidden = true;
  $('em-created').replaceChildren();
}

/** showErrors puts each field error next to its field; what has no field
 * goes to the summary at the top. */
function showErrors(message, fields) {
  const form = $('em-create');
  const rest = [];
  let first = null;
  for (const f of fields) {
    const key = String(f.field || '').replace(/^config[./]/, '').replace(/^\//, '').split(/[./]/)[0];
    const box = form.querySelector(`#em-config [data-field="${CSS.escape(key)}"]`) ||
      form.querySelector(`:scope > [data-field="${CSS.escape(key)}"], fieldset[data-field="${CSS.escape(key)}"]`);
    if (!box) { rest.push(f); continue; }
    const err = box.querySelector('.field-error');
    err.textContent = (err.textContent ? err.textContent + '; ' : '') + f.message;
    const control = box.querySelector('input, select, textarea');
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      first = first || control;
    }
  }
  const sum = $('em-create-summary');
  const placed = fields.length - rest.length;
  const head = placed ? `The node refused the emitter: ${placed === 1 ? 'one field needs' : placed + ' fields need'} a fix (marked below).` : message;
  sum.replaceChildren(h('p', null, head));
  if (rest.length) sum.append(h('ul', null, rest.map((f) => h('li', null, `${f.field}: ${f.message}`))));
  sum.hidden = false;
  if (first) first.focus();
}
