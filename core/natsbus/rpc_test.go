package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/stream"
)

// fakeOwner is the owner side of one node for the RPC's unit test.
type fakeOwner struct{ err error }

func (o fakeOwner) Create(_ context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	return emitter.Spec{ID: req.ID, Kind: req.Kind}, o.err
}
func (o fakeOwner) Delete(context.Context, string) error { return o.err }
func (o fakeOwner) Command(_ context.Context, id, name string, args json.RawMessage) (json.RawMessage, error) {
	if o.err != nil {
		return nil, o.err
	}
	return json.RawMessage(`{"id":"` + id + `","name":"` + name + `","args":` + string(args) + `}`), nil
}
func (o fakeOwner) LocalStream(id string) (*stream.Stream, error) {
	return nil, emitter.ErrNotFound
}

// Domain errors cross nodes intact: the node asked answers as the owner.
func TestRPCCarriesResultsAndDomainErrors(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"ok", nil, func(err error) bool { return err == nil }},
		{"not found", emitter.ErrNotFound, func(err error) bool { return errors.Is(err, emitter.ErrNotFound) }},
		{"unavailable", emitter.ErrUnavailable, func(err error) bool { return errors.Is(err, emitter.ErrUnavailable) }},
		{"validation", &emitter.ValidationError{Fields: []emitter.FieldError{{Field: "rate", Message: "too high"}}}, func(err error) bool {
			var ve *emitter.ValidationError
			return errors.As(err, &ve) && len(ve.Fields) == 1 && ve.Fields[0].Field == "rate"
		}},
		{"command", &emitter.CommandError{Code: "empty", Message: "nothing before 0"}, func(err error) bool {
			var ce *emitter.CommandError
			return errors.As(err, &ce) && ce.Code == "empty"
		}},
		{"other", errors.New("disk on fire"), func(err error) bool { return errors.Is(err, cluster.ErrRemote) }},
	}
	for i, tc := range cases {
		node := "node" + string(rune('a'+i))
		rpc, err := ServeRPC(srv.Connect(t), node, fakeOwner{tc.err}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rpc.Close(context.Background()) })
		peers := NewPeers(srv.Connect(t), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := peers.Command(ctx, node, "fib", "next", json.RawMessage(`{"n":1}`))
		cancel()
		if !tc.check(err) {
			t.Errorf("%s: error %v (%T)", tc.name, err, err)
		}
		if tc.err == nil && string(res) != `{"id":"fib","name":"next","args":{"n":1}}` {
			t.Errorf("%s: result %s", tc.name, res)
		}
	}
	// Nobody serves a node that is not there.
	_, err := NewPeers(srv.Connect(t), nil).Command(context.Background(), "ghost", "fib", "next", nil)
	if !errors.Is(err, cluster.ErrNodeDown) || !errors.Is(err, emitter.ErrUnavailable) {
		t.Fatalf("call to a missing node: %v", err)
	}
}
