// A form built from a plugin's config JSON Schema: one field per property
// (enum: select, boolean: checkbox, number: number input, array of enum:
// checkboxes, string: text, anything else: JSON). The server validates; the
// form only shapes the input and shows the server's field errors.
import { h, richText } from './dom.js';

/** buildConfigFields fills fieldset with fields for schema and returns a
 * reader: read() -> {config, errors}, where errors are local (unparseable)
 * inputs as [{field, message}]. */
export function buildConfigFields(fieldset, schema) {
  const legend = fieldset.querySelector('legend');
  fieldset.replaceChildren(legend);
  const props = (schema && schema.properties) || {};
  const names = Object.keys(props).filter((n) => props[n] && typeof props[n] === 'object');
  if (!names.length) {
    fieldset.append(h('p', { class: 'hint' }, 'This kind takes no config.'));
    return { read: () => ({ config: {}, errors: [] }) };
  }
  const readers = names.map((n) => {
    const f = field(n, props[n]);
    fieldset.append(f.node);
    return f;
  });
  return {
    read() {
      const config = {};
      const errors = [];
      for (const f of readers) {
        const r = f.read();
        if (r.error) errors.push({ field: f.name, message: r.error });
        else if (r.value !== undefined) config[f.name] = r.value;
      }
      return { config, errors };
    },
  };
}

function typeOf(s) {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t) return t;
  if (Array.isArray(s.enum)) return 'enum';
  return 'any';
}

function field(name, s) {
  const id = 'cfg-' + name;
  const err = h('p', { class: 'field-error', id: id + '-err' });
  const hintText = [s.description, s.default !== undefined ? `default ${JSON.stringify(s.default)}` : ''].filter(Boolean).join(' · ');
  const hint = h('p', { class: 'hint', id: id + '-hint' }, richText(hintText));
  const describedBy = `${id}-hint ${id}-err`;
  const t = typeOf(s);
  let control, read;
  if (Array.isArray(s.enum)) {
    control = h('select', { id, name, 'aria-describedby': describedBy },
      h('option', { value: '' }, s.default !== undefined ? `(default: ${s.default})` : '(none)'),
      s.enum.map((v) => h('option', { value: JSON.stringify(v) }, String(v))));
    read = () => ({ value: control.value ? JSON.parse(control.value) : undefined });
  } else if (t === 'boolean') {
    control = h('input', { id, name, type: 'checkbox', 'aria-describedby': describedBy, checked: s.default === true });
    read = () => ({ value: control.checked });
  } else if (t === 'number' || t === 'integer') {
    control = h('input', { id, name, type: 'text', inputmode: 'decimal', spellcheck: 'false', placeholder: s.default !== undefined ? String(s.default) : '', 'aria-describedby': describedBy });
    read = () => {
      const v = control.value.trim();
      if (!v) return {};
      const n = Number(v);
      if (!Number.isFinite(n)) return { error: 'not a number' };
      return { value: n };
    };
  } else if (t === 'array' && s.items && Array.isArray(s.items.enum)) {
    const boxes = s.items.enum.map((v) => h('input', { type: 'checkbox', value: JSON.stringify(v), name }));
    control = h('div', { class: 'choices', role: 'group', id, 'aria-labelledby': id + '-label', 'aria-describedby': describedBy },
      boxes.map((b, i) => h('label', { class: 'check' }, b, String(s.items.enum[i]))));
    read = () => {
      const on = boxes.filter((b) => b.checked).map((b) => JSON.parse(b.value));
      return { value: on.length ? on : undefined };
    };
  } else if (t === 'string') {
    control = h('input', { id, name, spellcheck: 'false', placeholder: s.default !== undefined ? String(s.default) : '', 'aria-describedby': describedBy });
    read = () => ({ value: control.value === '' ? undefined : control.value });
  } else {
    control = h('textarea', { id, name, rows: 2, spellcheck: 'false', placeholder: 'JSON', 'aria-describedby': describedBy });
    read = () => {
      const v = control.value.trim();
      if (!v) return {};
      try { return { value: JSON.parse(v) }; } catch { return { error: 'not valid JSON' }; }
    };
  }
  const label = control.tagName === 'DIV'
    ? h('span', { class: 'label', id: id + '-label' }, h('strong', null, name))
    : h('label', { for: id }, name);
  const node = h('div', { class: 'field', dataset: { field: name } }, label, control, hint, err);
  return { name, read, node };
}
