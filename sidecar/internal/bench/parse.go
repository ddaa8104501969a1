package bench

import (
	"bytes"
	"sync/atomic"
	"time"
)

// stampCache parses event timestamps, remembering the last one: events of
// one plugin batch share their timestamp, so most lookups are a compare.
type stampCache struct {
	last []byte
	ns   int64
	ok   bool
}

// parse returns the Unix nanoseconds of an RFC 3339 timestamp.
func (c *stampCache) parse(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if bytes.Equal(b, c.last) {
		return c.ns, c.ok
	}
	c.last = append(c.last[:0], b...)
	c.ns, c.ok = parseRFC3339(b)
	return c.ns, c.ok
}

// stampTable shares the parsed times of one stream's events between its
// subscribers, by seq: a ring of slots, each one atomic word holding the
// low bits of a seq and the time in µs after the table's base, so a
// reader never sees one event's seq with another's time. A time it
// cannot hold (before the base, or 12 days after) is not shared.
type stampTable struct {
	base  int64 // Unix ns
	slots [stampSlots]atomic.Uint64
}

const (
	stampSlots   = 1 << 12
	stampSeqBits = 24
	stampUSBits  = 64 - stampSeqBits
	stampUSMask  = 1<<stampUSBits - 1
)

// newStampTable starts the table an hour before now: events published
// during the run, or an hour before it, fit.
func newStampTable(now time.Time) *stampTable {
	return &stampTable{base: now.Add(-time.Hour).UnixNano()}
}

// lookup returns the time of the event with this seq, if shared; a nil
// table shares nothing.
func (t *stampTable) lookup(seq uint64) (int64, bool) {
	if t == nil {
		return 0, false
	}
	v := t.slots[seq%stampSlots].Load()
	us := v & stampUSMask
	if us == 0 || v>>stampUSBits != seq&(1<<stampSeqBits-1) {
		return 0, false
	}
	return t.base + int64(us-1)*1000, true
}

// store shares the time of the event with this seq, to the µs (what the
// latencies are recorded in).
func (t *stampTable) store(seq uint64, ns int64) {
	if t == nil || ns < t.base {
		return
	}
	us := uint64(ns-t.base)/1000 + 1 // 0 marks an empty slot
	if us > stampUSMask {
		return
	}
	t.slots[seq%stampSlots].Store(seq<<stampUSBits | us)
}

// parseRFC3339 parses "2006-01-02T15:04:05.999999999Z" quickly and falls
// back to the time package for anything else (offsets, odd forms).
func parseRFC3339(b []byte) (int64, bool) {
	if ns, ok := fastUTC(b); ok {
		return ns, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

func fastUTC(b []byte) (int64, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return 0, false
	}
	var frac int64
	rest := b[19 : len(b)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return 0, false
		}
		f, ok := num(rest[1:])
		if !ok {
			return 0, false
		}
		frac = int64(f)
		for range 10 - len(rest) {
			frac *= 10
		}
	}
	days := daysFromCivil(y, mo, d)
	return (days*86400+int64(h*3600+mi*60+s))*int64(time.Second) + frac, true
}

// daysFromCivil is the days since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

// stringField returns the raw bytes of the first JSON string value of key
// (given with its quotes and colon, e.g. `"time":"`) in b. It does not
// unescape: timestamps never need it.
func stringField(b, key []byte) []byte {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// uintField returns the unsigned integer after key (e.g. `"seq":`) in b.
func uintField(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	return parseUint(bytes.TrimLeft(b[i+len(key):], " "))
}

// parseUint reads the leading decimal digits of b.
func parseUint(b []byte) (uint64, bool) {
	var n uint64
	k := 0
	for ; k < len(b) && b[k] >= '0' && b[k] <= '9'; k++ {
		n = n*10 + uint64(b[k]-'0')
	}
	return n, k > 0
}

// Keys of the fields the scenarios read.
var (
	keyTime      = []byte(`"time":"`)
	keyTimestamp = []byte(`"timestamp":"`)
	keySeq       = []byte(`"seq":`)
	keyType      = []byte(`"type":"`)
	keyPosition  = []byte(`"position":`)
)
