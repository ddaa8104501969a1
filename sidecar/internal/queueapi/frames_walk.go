package queueapi

import "encoding/json"

// walkFrame fills f from t (which json.Valid accepted) in one walk; false
// means t holds something the walk leaves to encoding/json (escaped or
// case-folded keys, a repeated member, a value of an unexpected type),
// which then decides, with the same result or error as ever.
func walkFrame(t []byte, f *frame) bool {
	var seen [3]bool
	w := walkObject(t)
	for w.next() {
		if w.keyEsc {
			return false
		}
		i := -1
		switch string(w.key) {
		case "action":
			s, ok := plainString(w.val)
			if !ok {
				return false
			}
			i, f.Action = 0, s
		case "headers":
			if !walkHeaders(w.val, f) {
				return false
			}
			i = 1
		case "body":
			i, f.Body = 2, json.RawMessage(w.val)
		default:
			if foldOnly(w.key, "action") || foldOnly(w.key, "headers") || foldOnly(w.key, "body") {
				return false
			}
			continue
		}
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	return w.done()
}

func walkHeaders(v []byte, f *frame) bool {
	if string(v) == "null" {
		return true
	}
	if v[0] != '{' {
		return false
	}
	f.Headers = make(map[string]json.RawMessage, 4)
	h := walkObject(v)
	for h.next() {
		if h.keyEsc {
			return false
		}
		k := string(h.key)
		if _, dup := f.Headers[k]; dup {
			return false
		}
		f.Headers[k] = json.RawMessage(h.val)
	}
	return h.done()
}

// walkParams fills the parameters of the hot actions (message_post,
// message_delete_many) from a body inside a valid frame; false leaves v
// to decodeObject.
func walkParams(body []byte, v any) bool {
	switch p := v.(type) {
	case *postParams:
		if walkPost(body, p) {
			return true
		}
		*p = postParams{}
	case *idsParams:
		if walkIDs(body, p) {
			return true
		}
		*p = idsParams{}
	}
	return false
}

func walkPost(body []byte, p *postParams) bool {
	var seen [2]bool
	w := walkObject(body)
	for w.nextKey() {
		if w.keyEsc {
			return false
		}
		var ok bool
		i := -1
		switch string(w.key) {
		case "queue_name":
			i = 0
			if ok = w.skip(); ok {
				p.QueueName, ok = plainString(w.val)
			}
		case "messages":
			i = 1
			p.Messages, ok = walkMsgsIn(&w)
		default:
			ok = w.skip() && !foldOnly(w.key, "queue_name") && !foldOnly(w.key, "messages")
		}
		if !ok || (i >= 0 && seen[i]) {
			return false
		}
		if i >= 0 {
			seen[i] = true
		}
	}
	return w.done()
}

// walkMsgsIn reads the messages array w stopped at (descending into it:
// one scan of the post's messages, not one per level) and passes it.
func walkMsgsIn(w *walker) ([]msgIn, bool) {
	if w.vstart < len(w.b) && w.b[w.vstart] == 'n' {
		return nil, w.skip() && string(w.val) == "null"
	}
	a := w.descend()
	if a.err != nil || a.obj {
		return nil, false
	}
	ms := make([]msgIn, 0, 16)
	for a.nextKey() {
		o := a.descend()
		if !o.obj {
			return nil, false
		}
		m, ok := walkMsgIn(&o)
		if !ok || !a.ascend(&o) {
			return nil, false
		}
		ms = append(ms, m)
	}
	return ms, a.done() && w.ascend(&a)
}

func walkMsgIn(o *walker) (msgIn, bool) {
	var m msgIn
	var seen [2]bool
	for o.next() {
		if o.keyEsc {
			return m, false
		}
		i := -1
		switch string(o.key) {
		case "ttl":
			i = 0
			if string(o.val) != "null" {
				n, ok := plainInt(o.val)
				if !ok {
					return m, false
				}
				m.TTL = &n
			}
		case "body":
			i, m.Body = 1, json.RawMessage(o.val)
		default:
			if foldOnly(o.key, "ttl") || foldOnly(o.key, "body") {
				return m, false
			}
		}
		if i >= 0 {
			if seen[i] {
				return m, false
			}
			seen[i] = true
		}
	}
	return m, true
}

var idsKeys = [...]string{"queue_name", "message_id", "claim_id", "message_ids", "claim_ids", "pop"}

func walkIDs(body []byte, p *idsParams) bool {
	var seen [len(idsKeys)]bool
	w := walkObject(body)
	for w.next() {
		if w.keyEsc {
			return false
		}
		i, ok := -1, true
		for j, k := range idsKeys {
			if string(w.key) == k {
				i = j
			} else if foldOnly(w.key, k) {
				return false
			}
		}
		switch i {
		case 0:
			p.QueueName, ok = plainString(w.val)
		case 1:
			p.MessageID, ok = plainString(w.val)
		case 2:
			p.ClaimID, ok = plainString(w.val)
		case 3:
			p.MessageIDs, ok = walkStrings(w.val)
		case 4:
			p.ClaimIDs, ok = walkStrings(w.val)
		case 5:
			var n int64
			n, ok = plainInt(w.val)
			p.Pop = int(n)
			ok = ok && int64(p.Pop) == n
		}
		if !ok || (i >= 0 && seen[i]) {
			return false
		}
		if i >= 0 {
			seen[i] = true
		}
	}
	return w.done()
}

func walkStrings(v []byte) ([]string, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if v[0] != '[' {
		return nil, false
	}
	out := make([]string, 0, 16)
	a := walk(v)
	for a.next() {
		s, ok := plainString(a.val)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, a.done()
}
