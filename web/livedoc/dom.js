// Small DOM helpers: build elements without innerHTML, so no text from the
// API is ever parsed as markup.

/** h builds an element: attrs set properties for on* handlers and non-string
 * values, attributes otherwise; children may be nodes, strings or arrays. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (typeof v === 'string' || v === true) el.setAttribute(k, v === true ? '' : v);
    else el[k] = v;
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const c of kids) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** pollWhileShown runs refresh when the tab name is shown and then every
 * ms while it stays shown and the page is visible. */
export function pollWhileShown(app, name, refresh, ms = 2000) {
  let timer = 0;
  app.onShow(name, (on) => {
    clearInterval(timer);
    if (!on) return;
    refresh();
    timer = setInterval(() => { if (!document.hidden) refresh(); }, ms);
  });
}

/** $ finds one element by id. */
export const $ = (id) => document.getElementById(id);

/** text renders `code` spans of a short markdown-ish text as <code>. */
export function richText(s) {
  const parts = String(s || '').split('`');
  return parts.map((p, i) => (i % 2 ? h('code', null, p) : p));
}

/** paragraphs splits text on blank lines into <p> with richText. */
export function paragraphs(s) {
  return String(s || '').trim().split(/\n\s*\n/).filter(Boolean)
    .map((p) => h('p', null, richText(p.replace(/\s*\n\s*/g, ' '))));
}

/** prettyJSON re-indents JSON text without parsing numbers, so int64 values
 * (beyond what a JS number holds exactly) are shown as the server sent them.
 * Text that is not JSON comes back unchanged. */
export function prettyJSON(text) {
  const t = String(text).trim();
  if (!t || !'{['.includes(t[0])) return text;
  try { JSON.parse(t); } catch { return text; }
  let out = '', depth = 0, inStr = false;
  const nl = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (inStr) {
      out += c;
      if (c === '\\') { out += t[++i]; } else if (c === '"') inStr = false;
      continue;
    }
    switch (c) {
      case '"': inStr = true; out += c; break;
      case '{': case '[':
        if (t[i + 1] === (c === '{' ? '}' : ']')) { out += c + t[++i]; break; }
        depth++; out += c + nl(); break;
      case '}': case ']': depth--; out += nl() + c; break;
      case ',': out += ',' + nl(); break;
      case ':': out += ': '; break;
      case ' ': case '\n': case '\t': case '\r': break;
      default: out += c;
    }
  }
  return out;
}

/** clock formats a Date (or ISO text) as local HH:MM:SS.mmm. */
export function clock(d) {
  const t = d instanceof Date ? d : new Date(d);
  if (isNaN(t)) return '';
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}.${p(t.getMilliseconds(), 3)}`;
}

/** trimList keeps at most max children in a list, dropping the oldest. */
export function trimList(list, max) {
  while (list.childElementCount > max) list.firstElementChild.remove();
}

/** stickToBottom appends li to list, scrolling only if the reader was at the end. */
export function appendScrolled(list, li) {
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  if (atEnd) list.scrollTop = list.scrollHeight;
}
