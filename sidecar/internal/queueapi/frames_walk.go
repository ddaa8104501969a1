package queueapi

import (
	"encoding/json"

	"github.com/sidestream/sidestream/sidecar/internal/jsonwalk"
)

// walkFrame fills f from t in one walk (grammarValid accepted t); false
// means t holds something the walk leaves to encoding/json (escaped or
// case-folded keys, a repeated member, a value of an unexpected type),
// which then decides, with the same result or error as ever.
func walkFrame(t []byte, f *frame) bool {
	var seen [3]bool
	w := jsonwalk.Object(t)
	for w.Next() {
		if w.KeyEsc {
			return false
		}
		i := -1
		switch string(w.Key) {
		case "action":
			s, ok := jsonwalk.SharedString(w.Val)
			if !ok {
				return false
			}
			i, f.Action = 0, s
		case "headers":
			if !walkHeaders(w.Val, f) {
				return false
			}
			i = 1
		case "body":
			i, f.Body = 2, json.RawMessage(w.Val)
		default:
			if jsonwalk.FoldOnly(w.Key, "action") || jsonwalk.FoldOnly(w.Key, "headers") || jsonwalk.FoldOnly(w.Key, "body") {
				return false
			}
			continue
		}
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	return w.Done()
}

func walkHeaders(v []byte, f *frame) bool {
	if string(v) == "null" {
		return true
	}
	if v[0] != '{' {
		return false
	}
	h := jsonwalk.Object(v)
	for h.Next() {
		// A value must be a plain string (decodeFrame's rule), and names
		// are compared as encoding/json's map keys would be: exactly.
		if _, ok := jsonwalk.SharedString(h.Val); h.KeyEsc || !ok || f.nWalked == maxWalkedHeaders {
			return false
		}
		for _, p := range f.walked[:f.nWalked] {
			if string(p.name) == string(h.Key) {
				return false
			}
		}
		f.walked[f.nWalked] = headerPair{name: h.Key, val: h.Val}
		f.nWalked++
	}
	return h.Done()
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
	w := jsonwalk.Object(body)
	for w.NextKey() {
		if w.KeyEsc {
			return false
		}
		var ok bool
		i := -1
		switch string(w.Key) {
		case "queue_name":
			i = 0
			if ok = w.Skip(); ok {
				p.QueueName, ok = jsonwalk.SharedString(w.Val)
			}
		case "messages":
			i = 1
			p.Messages, ok = walkMsgsIn(&w)
		default:
			ok = w.Skip() && !jsonwalk.FoldOnly(w.Key, "queue_name") && !jsonwalk.FoldOnly(w.Key, "messages")
		}
		if !ok || (i >= 0 && seen[i]) {
			return false
		}
		if i >= 0 {
			seen[i] = true
		}
	}
	return w.Done()
}

// walkMsgsIn reads the messages array w stopped at (descending into it:
// one scan of the post's messages, not one per level) and passes it.
func walkMsgsIn(w *jsonwalk.Walker) ([]msgIn, bool) {
	if w.ValueStartsWith('n') {
		return nil, w.Skip() && string(w.Val) == "null"
	}
	a := w.Descend()
	if a.Err() != nil || a.IsObject() {
		return nil, false
	}
	ms := make([]msgIn, 0, 16)
	for a.NextKey() {
		o := a.Descend()
		if !o.IsObject() {
			return nil, false
		}
		m, ok := walkMsgIn(&o)
		if !ok || !a.Ascend(&o) {
			return nil, false
		}
		ms = append(ms, m)
	}
	return ms, a.Done() && w.Ascend(&a)
}

func walkMsgIn(o *jsonwalk.Walker) (msgIn, bool) {
	var m msgIn
	var seen [2]bool
	for o.Next() {
		if o.KeyEsc {
			return m, false
		}
		i := -1
		switch string(o.Key) {
		case "ttl":
			i = 0
			if string(o.Val) != "null" {
				n, ok := jsonwalk.PlainInt(o.Val)
				if !ok {
					return m, false
				}
				m.TTL = &n
			}
		case "body":
			i, m.Body = 1, json.RawMessage(o.Val)
		default:
			if jsonwalk.FoldOnly(o.Key, "ttl") || jsonwalk.FoldOnly(o.Key, "body") {
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
	w := jsonwalk.Object(body)
	for w.Next() {
		if w.KeyEsc {
			return false
		}
		i, ok := -1, true
		for j, k := range idsKeys {
			if string(w.Key) == k {
				i = j
			} else if jsonwalk.FoldOnly(w.Key, k) {
				return false
			}
		}
		switch i {
		case 0:
			p.QueueName, ok = jsonwalk.SharedString(w.Val)
		case 1:
			p.MessageID, ok = jsonwalk.SharedString(w.Val)
		case 2:
			p.ClaimID, ok = jsonwalk.SharedString(w.Val)
		case 3:
			p.MessageIDs, ok = walkStrings(w.Val)
		case 4:
			p.ClaimIDs, ok = walkStrings(w.Val)
		case 5:
			var n int64
			n, ok = jsonwalk.PlainInt(w.Val)
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
	return w.Done()
}

func walkStrings(v []byte) ([]string, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if v[0] != '[' {
		return nil, false
	}
	out := make([]string, 0, 16)
	a := jsonwalk.Walk(v)
	for a.Next() {
		s, ok := jsonwalk.SharedString(a.Val)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, a.Done()
}
