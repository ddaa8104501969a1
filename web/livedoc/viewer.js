// Stream viewer: one stream over its WebSocket (envelopes carry seq, type
// and the event's own time), shown as a log viewer for log events (level
// colours, search, level filter, follow/pause, "load older" paging back
// through the REST history with its after cursor) and as a live chart of
// the numeric fields of other events. Gap, offline and reset markers are
// rows in the list and dashed lines on the chart's timeline. The socket
// reconnects by itself and resumes after the last seq it saw.
import { $, h, clock, prettyJSON } from './dom.js';
import { api, exchange, wsURL, ApiError } from './api.js';
import { TimeChart } from './chart.js';

const PAGE = 100; // events per history page
const MAX_EVENTS = 5000; // kept in memory per stream
const MAX_ROWS = 1500; // shown at once
const LEVELS = ['error', 'warn', 'info', 'debug'];

export function initViewer(app) {
  const v = new Viewer();
  app.view = (stream) => { app.select('viewer'); v.open(stream); };
  app.onShow('viewer', (on) => { if (on) v.listStreams(); });
}

/** parse decodes JSON keeping integers beyond 2^53 exact (as raw JSON, so
 * a magic number shows as the server sent it). */
function parse(text) {
  return JSON.parse(text, (k, v, ctx) => (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) &&
    ctx && ctx.source && JSON.rawJSON ? JSON.rawJSON(ctx.source) : v));
}

const num = (v) => (JSON.isRawJSON && JSON.isRawJSON(v) ? Number(v.rawJSON) : v);

/** numericFields are the top-level numbers of an event's data. */
function numericFields(data) {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return [];
  return Object.entries(data).map(([k, x]) => [k, num(x)]).filter(([, x]) => typeof x === 'number' && isFinite(x));
}

const isLog = (e) => e.data && typeof e.data === 'object' && 'level' in e.data && 'message' in e.data;

class Viewer {
  constructor() {
    this.build();
    this.chart = new TimeChart($('vw-chart'));
    this.reset();
  }

  build() {
    const opt = (value, text) => h('option', { value }, text);
    $('vw-root').replaceChildren(
      h('form', { id: 'vw-form', class: 'filters', onsubmit: (e) => { e.preventDefault(); this.open(this.chosen()); } },
        h('label', { for: 'vw-stream' }, 'Stream'),
        h('select', { id: 'vw-stream' }, opt('magic', 'magic (shared)'), opt('time', 'time (shared)'), opt('fib', 'fib (shared)')),
        h('label', { for: 'vw-after' }, 'Start after seq'),
        h('input', { id: 'vw-after', inputmode: 'numeric', pattern: '[0-9]*', placeholder: 'latest', size: 8 }),
        h('button', { type: 'submit', id: 'vw-open' }, 'Open'),
        h('button', { type: 'button', id: 'vw-stop', class: 'quiet', onclick: () => this.stop() }, 'Stop'),
        h('span', { id: 'vw-state', class: 'state', role: 'status' }, 'closed')),
      h('p', { id: 'vw-error', class: 'error-text', role: 'alert', hidden: true }),
      h('dl', { class: 'stats', 'aria-label': 'Viewer statistics' },
        h('div', null, h('dt', null, 'Shown'), h('dd', { id: 'vw-count' }, '0')),
        h('div', null, h('dt', null, 'Oldest seq'), h('dd', { id: 'vw-oldest' }, '–')),
        h('div', null, h('dt', null, 'Last seq'), h('dd', { id: 'vw-last' }, '–')),
        h('div', null, h('dt', null, 'Markers'), h('dd', { id: 'vw-markers' }, '0'))),
      h('canvas', { id: 'vw-chart', class: 'vw-chart', role: 'img', 'aria-label': 'Timeline: numeric fields and events per second over event time, with gap, offline and reset markers' }),
      h('div', { class: 'filters vw-tools' },
        h('label', { for: 'vw-search' }, 'Search'),
        h('input', { id: 'vw-search', type: 'search', spellcheck: 'false', placeholder: 'text in the event', oninput: () => this.rerender() }),
        h('label', { for: 'vw-level' }, 'Level'),
        h('select', { id: 'vw-level', onchange: () => this.rerender() }, opt('', 'all'), LEVELS.map((l) => opt(l, l))),
        h('button', { type: 'button', id: 'vw-follow', 'aria-pressed': 'false', onclick: () => this.setFollow(!this.follow) }, 'Pause'),
        h('button', { type: 'button', id: 'vw-older', class: 'quiet', onclick: () => this.loadOlder() }, 'Load older')),
      h('p', { id: 'vw-none', class: 'hint', hidden: true }, 'No event matches the filter.'),
      h('ol', { id: 'vw-log', class: 'vw-log', 'aria-label': 'Events, oldest first' }));
  }

  reset() {
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000, 'bye'); }
    clearTimeout(this.retryTimer);
    this.ws = null;
    this.stream = '';
    this.events = []; // ascending seq; markers have a .marker kind
    this.lastSeq = 0;
    this.follow = true;
    this.held = 0;
    this.pending = [];
    this.markers = 0; // seen, even when older rows are dropped
    this.retries = 0;
    this.gen = (this.gen || 0) + 1;
    this.chart.clear();
    this.buckets = new Map(); // second -> count, for streams without numbers
    $('vw-log').replaceChildren();
    $('vw-older').disabled = false;
    $('vw-older').textContent = 'Load older';
    this.setFollow(true);
    this.stats();
  }

  /** stop closes the socket and keeps what is shown. */
  stop() {
    this.gen++;
    clearTimeout(this.retryTimer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000, 'bye'); this.ws = null; }
    this.state('stopped');
  }

  chosen() { return $('vw-stream').value; }

  async listStreams() {
    const sel = $('vw-stream');
    try {
      const r = await api('GET', '/api/v1/emitters?limit=1000');
      const keep = sel.value;
      const shared = ['magic', 'time', 'fib'];
      sel.replaceChildren(...shared.map((s) => h('option', { value: s }, s + ' (shared)')),
        ...r.items.filter((e) => !shared.includes(e.id)).map((e) => h('option', { value: e.id }, `${e.id} (${e.kind})`)));
      if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    } catch { /* the shared streams stay listed */ }
  }

  async open(stream) {
    this.reset();
    this.stream = stream;
    const gen = this.gen;
    if (![...$('vw-stream').options].some((o) => o.value === stream)) {
      $('vw-stream').append(h('option', { value: stream }, stream));
    }
    $('vw-stream').value = stream;
    this.error('');
    const from = $('vw-after').value.trim();
    if (/^\d+$/.test(from)) {
      this.lastSeq = Number(from);
    } else {
      // The newest page of history first, then live from its end.
      try {
        const head = (await this.page(0, 1)).head;
        if (gen !== this.gen) return;
        const after = Math.max(0, head - PAGE);
        const p = await this.page(after, PAGE);
        if (gen !== this.gen) return;
        p.events.forEach((e) => this.add(e, false));
        this.lastSeq = Math.max(this.lastSeq, head);
        this.rerender();
      } catch (e) {
        this.error(`Cannot read ${stream}: ${e.message}`);
        return;
      }
    }
    this.connect(gen);
  }

  /** page reads GET .../events?after=&limit= keeping big integers exact. */
  async page(after, limit) {
    const r = await exchange('GET', `/api/v1/streams/${encodeURIComponent(this.stream)}/events?after=${after}&limit=${limit}`);
    const body = r.text ? parse(r.text) : null;
    if (r.status !== 200) throw new ApiError(r.status, body);
    body.events = body.events.map((e) => ({ ...e, seq: num(e.seq) }));
    body.head = num(body.head);
    return body;
  }

  connect(gen) {
    const path = `/api/v1/streams/${encodeURIComponent(this.stream)}/ws?after=${this.lastSeq}`;
    const ws = new WebSocket(wsURL(path));
    this.ws = ws;
    this.state(this.retries ? 'reconnecting…' : 'connecting');
    let opened = false;
    ws.onopen = () => { opened = true; this.retries = 0; this.state('live'); };
    ws.onmessage = (m) => { if (gen === this.gen) this.frame(m.data); };
    ws.onclose = (e) => {
      if (gen !== this.gen) return;
      this.ws = null;
      // Back off 0.5 s, 1 s, 2 s … 5 s; resume after the last seq seen.
      const wait = Math.min(5000, 500 * 2 ** Math.min(this.retries++, 4));
      this.state(opened ? `connection lost (code ${e.code}), retrying` : 'cannot connect, retrying');
      this.retryTimer = setTimeout(() => { if (gen === this.gen) this.connect(gen); }, wait);
    };
  }

  frame(text) {
    let e;
    try { e = parse(text); } catch { return; }
    e.seq = num(e.seq);
    e.frame = text;
    const control = e.type === 'gap' || e.type === 'offline' || e.type === 'reset';
    if (!control && e.seq <= this.lastSeq && this.events.length) {
      // The stream went back: it was deleted and made again, or reset.
      this.add({ seq: e.seq, type: 'reset', time: e.time, marker: 'reset',
        text: `stream reset: seq ${e.seq} after ${this.lastSeq}` }, true);
    }
    if (e.type === 'gap') {
      const d = e.data || {};
      this.add({ ...e, marker: 'gap', text: `gap: seq ${num(d.from)}–${num(d.to)} no longer kept` }, true);
    } else if (e.type === 'reset') {
      // A stream without history started over (a restart): the seqs
      // between were never made.
      const d = e.data || {};
      this.add({ ...e, marker: 'reset', text: `reset: the stream started over at seq ${num(d.start)}` }, true);
    } else if (e.type === 'offline') {
      this.add({ ...e, marker: 'offline', text: 'offline: ' + ((e.data && e.data.reason) || 'source lost') }, true);
    } else {
      this.add(e, true);
    }
    this.lastSeq = e.seq;
    $('vw-last').textContent = '#' + e.seq;
  }

  /** add stores an event (ascending), feeds the chart and, when live and
   * following, shows it. */
  add(e, live) {
    const t = new Date(isLog(e) && e.data.timestamp ? e.data.timestamp : e.time).getTime();
    e.t = t;
    if (e.marker) this.markers++;
    if (e.marker) this.chart.mark(t, e.marker, e.text);
    else this.plot(e, t);
    this.events.push(e); // live frames come in seq order; older pages are sorted by loadOlder
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    if (!live) return;
    if (!this.follow) { this.held++; this.setFollow(false); return; }
    if (this.matches(e)) {
      this.pending.push(e);
      if (this.pending.length === 1) requestAnimationFrame(() => this.flush());
    }
  }

  /** flush shows the rows that came since the last frame, at once: one
   * layout per frame, not one per event (a fast stream sends hundreds). */
  flush() {
    const rows = this.pending.splice(0);
    // Paused meanwhile: they stay in events, shown on Follow.
    if (!this.follow) return;
    if (!rows.length) return;
    const list = $('vw-log');
    const frag = document.createDocumentFragment();
    for (const e of rows.slice(-MAX_ROWS)) frag.append(this.row(e));
    list.append(frag);
    let extra = list.childElementCount - MAX_ROWS;
    while (extra-- > 0) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
    $('vw-none').hidden = true;
    this.stats();
  }

  plot(e, t) {
    const fields = isLog(e) ? [] : numericFields(e.data);
    if (fields.length) { for (const [k, x] of fields) this.chart.push(k, t, x); return; }
    // No numbers (log lines): chart the events per second.
    const sec = Math.floor(t / 1000) * 1000;
    const n = (this.buckets.get(sec) || 0) + 1;
    this.buckets.set(sec, n);
    if (this.buckets.size > 600) this.buckets.delete(this.buckets.keys().next().value);
    this.chart.push('events/s', sec, n);
  }

  matches(e) {
    if (e.marker) return true;
    const level = $('vw-level').value;
    if (level && !(isLog(e) && String(e.data.level).toLowerCase().startsWith(level))) return false;
    const q = $('vw-search').value.trim().toLowerCase();
    return !q || (e.frame || JSON.stringify(e.data) || '').toLowerCase().includes(q);
  }

  row(e) {
    const when = isFinite(e.t) ? new Date(e.t) : null;
    const time = h('time', { datetime: when ? when.toISOString() : '', title: when ? when.toISOString() : '' }, when ? clock(when) : '');
    if (e.marker) {
      return h('li', { class: 'vw-marker ' + e.marker, dataset: { seq: String(e.seq), marker: e.marker } },
        time, h('span', { class: 'vw-seq' }, '#' + e.seq), h('span', { class: 'vw-msg' }, e.text));
    }
    const log = isLog(e);
    const level = log ? String(e.data.level).toLowerCase() : '';
    const summary = log
      ? [h('span', { class: 'lvl lvl-' + level }, level), h('span', { class: 'vw-msg' }, String(e.data.message), e.data.guest ? h('span', { class: 'hint' }, ' · ' + e.data.guest) : null)]
      : [h('span', { class: 'kind' }, e.type || 'message'), h('span', { class: 'vw-msg mono' }, e.data === undefined ? '' : JSON.stringify(e.data))];
    const li = h('li', { class: log ? 'vw-row lvl-row-' + level : 'vw-row', dataset: { seq: String(e.seq) } },
      h('button', { type: 'button', class: 'vw-toggle', 'aria-expanded': 'false', 'aria-label': `Frame of seq ${e.seq}` }, '▸'),
      time, h('span', { class: 'vw-seq' }, '#' + e.seq), ...summary);
    li.firstChild.addEventListener('click', () => {
      const open = li.firstChild.getAttribute('aria-expanded') === 'true';
      li.firstChild.setAttribute('aria-expanded', String(!open));
      li.firstChild.textContent = open ? '▸' : '▾';
      if (open) li.querySelector('pre')?.remove();
      else li.append(h('pre', { class: 'vw-frame' }, prettyJSON(e.frame || JSON.stringify({ stream: this.stream, seq: e.seq, type: e.type, time: e.time, data: e.data }))));
    });
    return li;
  }

  rerender() {
    const matched = this.events.filter((e) => this.matches(e));
    // Following: the newest rows; paused (reading history): the oldest.
    const shown = this.follow ? matched.slice(-MAX_ROWS) : matched.slice(0, MAX_ROWS);
    const list = $('vw-log');
    list.replaceChildren(...shown.map((e) => this.row(e)));
    $('vw-none').hidden = shown.length > 0 || this.events.length === 0;
    if (this.follow) list.scrollTop = list.scrollHeight;
    this.stats();
  }

  setFollow(on) {
    const b = $('vw-follow');
    if (on && !this.follow) { this.follow = true; this.held = 0; this.rerender(); }
    this.follow = on;
    b.setAttribute('aria-pressed', String(!on));
    b.textContent = on ? 'Pause' : `Follow (${this.held} new)`;
  }

  /** loadOlder reads the page of history before the oldest event shown. */
  async loadOlder() {
    const btn = $('vw-older');
    const data = this.events.filter((e) => !e.marker);
    const oldest = data.length ? data[0].seq : this.lastSeq + 1;
    if (!this.stream || oldest <= 1) { btn.textContent = 'Start of the stream'; btn.disabled = true; return; }
    const after = Math.max(0, oldest - 1 - PAGE);
    btn.disabled = true;
    // Reading history: stop following, so the view stays where it is.
    if (this.follow) this.setFollow(false);
    try {
      const p = await this.page(after, Math.min(PAGE, oldest - 1));
      const older = p.events.filter((e) => e.seq < oldest);
      const list = $('vw-log');
      const keep = list.scrollHeight - list.scrollTop;
      older.forEach((e) => this.add(e, false));
      this.events.sort((a, b) => a.seq - b.seq);
      this.rerender();
      list.scrollTop = list.scrollHeight - keep;
      if (!older.length || after === 0) {
        btn.textContent = older.length ? 'Start of the stream' : 'Nothing older is kept';
        return;
      }
      btn.disabled = false;
    } catch (e) {
      this.error('Cannot load older events: ' + e.message);
      btn.disabled = false;
    }
  }

  stats() {
    const data = this.events.filter((e) => !e.marker);
    $('vw-count').textContent = String($('vw-log').childElementCount);
    $('vw-oldest').textContent = data.length ? '#' + data[0].seq : '–';
    $('vw-last').textContent = this.lastSeq ? '#' + this.lastSeq : '–';
    $('vw-markers').textContent = String(this.markers);
  }

  state(s) { $('vw-state').textContent = s; }

  error(msg) {
    const el = $('vw-error');
    el.textContent = msg;
    el.hidden = !msg;
  }
}
