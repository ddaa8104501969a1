// The node's validation messages as sentences (no imports: api.js and the
// panels share it).

// Schema keywords as the validator reports them, and the sentence for each.
const rules = [
  [/\bexclusiveMinimum: got (\S+), want ([^\s,;)]+)/g, 'must be greater than $2 (got $1)'],
  [/\bexclusiveMaximum: got (\S+), want ([^\s,;)]+)/g, 'must be less than $2 (got $1)'],
  [/\bminimum: got (\S+), want ([^\s,;)]+)/g, 'must be at least $2 (got $1)'],
  [/\bmaximum: got (\S+), want ([^\s,;)]+)/g, 'must be at most $2 (got $1)'],
  [/\bminLength: got (\d+), want (\d+)/g, 'must be at least $2 characters long (got $1)'],
  [/\bmaxLength: got (\d+), want (\d+)/g, 'must be at most $2 characters long (got $1)'],
  [/\bminItems: got (\d+), want (\d+)/g, 'must have at least $2 items (got $1)'],
  [/\bmaxItems: got (\d+), want (\d+)/g, 'must have at most $2 items (got $1)'],
  [/\bmissing propert(?:y|ies) (.+)$/g, 'required: $1'],
  [/\badditional properties (.+) not allowed/g, 'unknown field $1'],
  [/^got (\w+), want (\w+)$/g, 'must be a $2, not a $1'],
];

/** readable turns a validator's schema wording into a sentence; what it
 * does not recognise (a node that already words its errors) stays as is. */
export function readable(message) {
  let s = String(message || '');
  for (const [re, out] of rules) s = s.replace(re, out);
  return s;
}
