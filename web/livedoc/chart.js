// Charts without a library: an SVG sparkline and a canvas time chart
// with markers. A few hundred points at a few frames per second is well
// within what plain canvas draws, so a chart library would not earn its
// weight in the bundle.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

/** sparkline draws values (oldest first) as a small SVG line, scaled to
 * its own maximum; opts.label is its accessible name. */
export function sparkline(values, opts = {}) {
  const w = opts.width || 120, hgt = opts.height || 28;
  const el = svg('svg', { class: 'spark', viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: 'img', 'aria-label': opts.label || 'sparkline' });
  const max = Math.max(...values, 0);
  const n = Math.max(values.length, 2);
  const pts = values.map((v, i) => {
    const x = (w * (i + (n - values.length))) / (n - 1);
    const y = max > 0 ? hgt - 2 - ((hgt - 4) * v) / max : hgt - 2;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  if (pts.length === 1) pts.unshift(`0,${pts[0].split(',')[1]}`);
  el.append(svg('polyline', { points: pts.join(' '), class: 'spark-line' }));
  return el;
}

const PALETTE = ['--accent', '--ok', '--warn', '--delete'];

/** TimeChart plots numeric series against event time on a canvas, one
 * band per series (each with its own scale: a Fibonacci position and a
 * Unix time do not share an axis), with vertical markers for gaps,
 * offline and reset events. */
export class TimeChart {
  constructor(canvas, { maxPoints = 600 } = {}) {
    this.canvas = canvas;
    this.maxPoints = maxPoints;
    this.series = new Map(); // name -> [{t, v}]
    this.markers = []; // {t, kind, label}
    this.pending = false;
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(canvas);
  }

  clear() { this.series.clear(); this.markers = []; this.schedule(); }

  /** push adds a point; one at the same time as the last replaces it
   * (a per-second count still counting). */
  push(name, t, v) {
    if (!isFinite(v) || !isFinite(t)) return;
    let s = this.series.get(name);
    if (!s) { s = []; this.series.set(name, s); }
    if (s.length && s[s.length - 1].t === t) s[s.length - 1].v = v;
    else s.push({ t, v });
    if (s.length > this.maxPoints) s.splice(0, s.length - this.maxPoints);
    this.schedule();
  }

  /** prepend adds older points (from "load older") in time order. */
  prepend(name, points) {
    const s = this.series.get(name) || [];
    this.series.set(name, [...points, ...s].sort((a, b) => a.t - b.t).slice(-this.maxPoints));
    this.schedule();
  }

  mark(t, kind, label) {
    this.markers.push({ t, kind, label });
    if (this.markers.length > 200) this.markers.shift();
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  range() {
    let t0 = Infinity, t1 = -Infinity;
    for (const s of this.series.values()) {
      if (s.length) { t0 = Math.min(t0, s[0].t); t1 = Math.max(t1, s[s.length - 1].t); }
    }
    for (const m of this.markers) { t0 = Math.min(t0, m.t); t1 = Math.max(t1, m.t); }
    if (!isFinite(t0)) return null;
    if (t1 - t0 < 1000) t0 = t1 - 1000;
    return [t0, t1];
  }

  draw() {
    const c = this.canvas;
    const css = getComputedStyle(c);
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, hgt = c.clientHeight;
    if (!w || !hgt) return;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(hgt * dpr)) c.height = Math.round(hgt * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const color = (v) => css.getPropertyValue(v).trim() || '#888';
    g.font = `11px ${css.getPropertyValue('--mono') || 'monospace'}`;
    // What is drawn, for tests and tools that cannot read pixels.
    c.dataset.series = [...this.series.keys()].join(' ');
    c.dataset.markers = this.markers.map((m) => m.kind).join(' ');
    const range = this.range();
    if (!range) {
      g.fillStyle = color('--muted');
      g.fillText('waiting for numeric events…', 8, 18);
      return;
    }
    const [t0, t1] = range;
    const left = 4, right = w - 4;
    const x = (t) => left + ((right - left) * (t - t0)) / (t1 - t0);
    const names = [...this.series.keys()];
    const band = (hgt - 16) / Math.max(names.length, 1);
    names.forEach((name, i) => {
      const s = this.series.get(name);
      let lo = Infinity, hi = -Infinity;
      for (const p of s) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
      if (hi === lo) { hi += 1; lo -= 1; }
      const top = i * band + 14, bottom = (i + 1) * band;
      const y = (v) => bottom - 2 - ((bottom - top - 4) * (v - lo)) / (hi - lo);
      g.strokeStyle = color('--line');
      g.beginPath(); g.moveTo(left, bottom); g.lineTo(right, bottom); g.stroke();
      g.strokeStyle = color(PALETTE[i % PALETTE.length]);
      g.lineWidth = 1.5;
      g.beginPath();
      s.forEach((p, j) => (j ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
      g.stroke();
      g.fillStyle = color('--fg');
      const last = s[s.length - 1];
      g.fillText(`${name}: ${fmt(last.v)}  (${fmt(lo)} … ${fmt(hi)})`, left + 2, top - 2);
    });
    for (const m of this.markers) {
      const mx = x(m.t);
      g.strokeStyle = color(m.kind === 'gap' ? '--warn' : '--err');
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(mx, 0); g.lineTo(mx, hgt); g.stroke();
      g.setLineDash([]);
      g.fillStyle = g.strokeStyle;
      g.fillText(m.kind, Math.min(mx + 3, right - 40), hgt - 3);
    }
  }

  close() { this.ro.disconnect(); }
}

function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e15 || (a > 0 && a < 1e-3)) return v.toExponential(3);
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}
