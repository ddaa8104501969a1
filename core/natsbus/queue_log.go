package natsbus

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

// The log. Every JetStream message of the queue stream is one entry: a
// batch of ops proposed together by one driver instance. An op is one
// mutating queue.Driver call with everything its effect depends on: the
// proposer's now and the claim id it generated. Message ids are not in
// the op: memq assigns them while applying, identically on every node.
//
// Ops are encoded by their callers (in parallel) and an entry is the
// concatenation of its ops (queue_codec.go).

type opKind uint8

const (
	opCreateQueue opKind = iota + 1
	opSetMeta
	opDeleteQueue
	opPost
	opDelete
	opPop
	opClaim
	opRenew
	opRelease
	opExpire
	opBarrier // changes nothing: reads wait until it is applied
)

type op struct {
	Kind   opKind
	Tenant string
	Queue  string
	Now    int64
	Meta   json.RawMessage
	Client string
	Msgs   []logMsg
	IDs    []string
	Claims []string
	Claim  string
	TTL    int64
	Grace  int64
	Limit  int
}

type logMsg struct {
	Body json.RawMessage
	TTL  int64
}

// entry is one log message as decoded.
type entry struct {
	// Inst is the proposing driver instance, Batch its number there: the
	// proposer finds its waiting callers by them.
	Inst  string
	Batch uint64
	Ops   []op
}

// result is what an op returned when applied.
type result struct {
	err     error
	created bool
	ids     []string
	msgs    []queue.Message
	claim   queue.Claim
	n       int
}

func (o *op) key() queue.Key { return queue.Key{Tenant: o.Tenant, Queue: o.Queue} }

// apply runs o on s; it is deterministic (see memq).
func (o *op) apply(s *memq.State) result {
	k, now := o.key(), time.Unix(0, o.Now)
	switch o.Kind {
	case opCreateQueue:
		return result{created: s.CreateQueue(k, o.Meta)}
	case opSetMeta:
		return result{err: s.SetQueueMetadata(k, o.Meta)}
	case opDeleteQueue:
		s.DeleteQueue(k)
		return result{}
	case opPost:
		client, _ := uuid.Parse(o.Client) // checked by the proposer
		msgs := make([]queue.NewMessage, len(o.Msgs))
		for i, m := range o.Msgs {
			msgs[i] = queue.NewMessage{Body: m.Body, TTL: time.Duration(m.TTL)}
		}
		return result{ids: s.PostMessages(k, client, msgs, now)}
	case opDelete:
		return result{err: s.DeleteMessages(k, o.IDs, o.Claims, now)}
	case opPop:
		return result{msgs: s.PopMessages(k, o.Limit, now)}
	case opClaim:
		id, ok := memq.ParseClaimID(o.Claim)
		if !ok {
			return result{err: fmt.Errorf("natsbus: log op with claim id %q", o.Claim)}
		}
		opts := queue.ClaimOptions{TTL: time.Duration(o.TTL), Grace: time.Duration(o.Grace), Limit: o.Limit}
		return result{claim: s.CreateClaim(k, id, opts, now)}
	case opRenew:
		return result{err: s.RenewClaim(k, o.Claim, time.Duration(o.TTL), time.Duration(o.Grace), now)}
	case opRelease:
		s.ReleaseClaim(k, o.Claim, now)
		return result{}
	case opExpire:
		return result{n: s.Expire(now)}
	case opBarrier:
		return result{}
	}
	// A newer version's op: every node skips it alike.
	return result{err: fmt.Errorf("natsbus: unknown queue log op %d", o.Kind)}
}
