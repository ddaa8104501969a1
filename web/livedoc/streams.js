// Live streams over EventSource: the browser reconnects by itself and
// resumes with Last-Event-ID; the page shows seq, type, events/s and gaps.
import { $, h, clock, trimList, appendScrolled } from './dom.js';
import { api, streamURL } from './api.js';
import { whyRefused } from './failure.js';

const MAX_ROWS = 300;
// The server sends a stream's events on the default type (onmessage) and
// names only its control markers, so one listener each sees everything.
const CONTROL_TYPES = ['gap', 'offline', 'reset'];

export function initStreams(app) {
  const s = new Viewer();
  app.watch = (stream) => { app.select('streams'); s.watch(stream); };
  app.onShow('streams', (on) => { if (on) refreshEmitters(); });
  $('sse-source').addEventListener('change', showWhen);
  $('sse-form').addEventListener('submit', (e) => { e.preventDefault(); s.connect(selected()); });
  $('sse-stop').addEventListener('click', () => s.stop());
  $('sse-pause').addEventListener('click', () => s.togglePause());
  $('sse-clear').addEventListener('click', () => s.clear());
  showWhen();
}

function showWhen() {
  const v = $('sse-source').value;
  for (const el of document.querySelectorAll('#sse-form [data-when]')) el.hidden = el.dataset.when !== v;
}

/** selected is the stream id the form names (the /api/v1/streams/{stream} key). */
function selected() {
  const v = $('sse-source').value;
  if (v === 'emitter') return $('sse-emitter').value;
  if (v === 'track') return 'track:' + $('sse-user').value.trim();
  return v;
}

async function refreshEmitters(select) {
  const sel = $('sse-emitter');
  try {
    const r = await api('GET', '/api/v1/emitters?limit=1000');
    const keep = select || sel.value;
    sel.replaceChildren(...r.items.map((e) => h('option', { value: e.id }, `${e.id} (${e.kind})`)));
    if (keep && r.items.some((e) => e.id === keep)) sel.value = keep;
  } catch { /* the list stays as it was; the emitters panel shows errors */ }
}

class Viewer {
  constructor() {
    this.es = null;
    this.paused = false;
    this.held = [];
    this.times = [];
    this.count = 0;
    this.gaps = 0;
    this.timer = 0;
  }

  async watch(stream) {
    if (stream.startsWith('track:')) {
      $('sse-source').value = 'track';
      $('sse-user').value = stream.slice(6);
    } else if (['magic', 'time', 'fib'].includes(stream)) {
      $('sse-source').value = stream;
    } else {
      $('sse-source').value = 'emitter';
      await refreshEmitters(stream);
      $('sse-emitter').value = stream;
    }
    showWhen();
    $('sse-replay').checked = true;
    this.connect(stream);
  }

  connect(stream) {
    if (!stream || stream === 'track:') { this.setState('choose a stream first'); return; }
    this.stop();
    this.clear();
    const q = $('sse-replay').checked ? '?from=start' : '';
    const path = `/api/v1/streams/${encodeURIComponent(stream)}/sse${q}`;
    $('sse-url').replaceChildren('EventSource ', h('code', null, path));
    const es = new EventSource(streamURL(path));
    this.es = es;
    this.setState('connecting');
    es.onopen = () => this.setState('open');
    es.onerror = async () => {
      if (this.es !== es) return;
      // CONNECTING: the browser retries by itself and resumes after the
      // last id it saw; CLOSED: the server refused the stream, with a
      // status EventSource does not show: ask again to say which.
      if (es.readyState !== EventSource.CLOSED) { this.setState('reconnecting…'); return; }
      this.stopped();
      this.setState('closed: asking the node why…');
      const r = await whyRefused(path);
      if (this.es === es) this.setState('closed: ' + r.text);
    };
    es.onmessage = (e) => this.onEvent(e);
    for (const t of CONTROL_TYPES) es.addEventListener(t, (e) => this.onEvent(e));
    $('sse-stop').disabled = false;
    $('sse-pause').disabled = false;
    this.timer = setInterval(() => this.tick(), 500);
  }

  stop() {
    if (this.es) { this.es.close(); this.es = null; this.setState('stopped'); }
    this.stopped();
  }

  stopped() {
    clearInterval(this.timer);
    $('sse-stop').disabled = true;
    $('sse-pause').disabled = true;
    this.setPaused(false);
    this.tick();
  }

  togglePause() { this.setPaused(!this.paused); }

  setPaused(p) {
    this.paused = p;
    const b = $('sse-pause');
    b.setAttribute('aria-pressed', String(p));
    b.textContent = p ? `Resume (${this.held.length} held)` : 'Pause';
    if (!p) { const held = this.held; this.held = []; held.forEach((e) => this.render(e)); }
  }

  clear() {
    $('sse-log').replaceChildren();
    this.count = 0; this.gaps = 0; this.times = []; this.held = [];
    $('sse-seq').textContent = '–';
    this.tick();
  }

  onEvent(e) {
    this.count++;
    this.times.push(performance.now());
    if (e.type === 'gap') this.gaps++;
    $('sse-seq').textContent = e.lastEventId || '–';
    if (this.paused) {
      if (this.held.length < 5000) this.held.push(e);
      $('sse-pause').textContent = `Resume (${this.held.length} held)`;
      return;
    }
    this.render(e);
  }

  render(e) {
    const list = $('sse-log');
    let li;
    if (e.type === 'gap') {
      let range = e.data;
      try { const g = JSON.parse(e.data); range = `seq ${g.from}–${g.to}`; } catch { /* show raw */ }
      li = h('li', { class: 'gap' }, h('span', null, '#' + e.lastEventId), h('span', null, 'gap'),
        h('span', null, clock(new Date())), h('span', null, `missed ${range}: no longer kept`));
    } else if (e.type === 'reset') {
      // A stream without history started over (its node restarted): the
      // seqs between never existed, so this is no gap.
      let start = e.data;
      try { start = String(JSON.parse(e.data).start); } catch { /* show raw */ }
      li = h('li', { class: 'gap' }, h('span', null, '#' + e.lastEventId), h('span', null, 'reset'),
        h('span', null, clock(new Date())), h('span', null, `stream started over at seq ${start}; nothing before it is kept`));
    } else {
      li = h('li', null, h('span', null, '#' + e.lastEventId), h('span', null, e.type),
        h('span', null, clock(new Date())), h('span', null, e.data));
    }
    appendScrolled(list, li);
    trimList(list, MAX_ROWS);
  }

  tick() {
    const now = performance.now();
    this.times = this.times.filter((t) => now - t < 5000);
    const span = Math.min(5000, Math.max(1000, now - (this.times[0] || now)));
    $('sse-count').textContent = String(this.count);
    $('sse-rate').textContent = this.es ? (this.times.length / (span / 1000)).toFixed(1) : '0';
    $('sse-gaps').textContent = String(this.gaps);
  }

  setState(s) { $('sse-state').textContent = s; }
}
