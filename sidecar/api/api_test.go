package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestErrorBodyEncodeAndDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body ErrorBody
		want string
	}{
		{"plain", NewError("not_found", "no such emitter"), `{"error":{"code":"not_found","message":"no such emitter"}}`},
		{"fields", NewError("invalid", "bad", FieldError{Field: "retention.max_age", Message: "must be a duration"}),
			`{"error":{"code":"invalid","message":"bad","fields":[{"field":"retention.max_age","message":"must be a duration"}]}}`},
		{"zaqar", ErrorBody{Error: Error{Code: "queue_not_found", Message: "gone"}, Title: "Not Found", Description: "gone"},
			`{"error":{"code":"queue_not_found","message":"gone"},"title":"Not Found","description":"gone"}`},
		{"escaped", NewError("x", `"<q>"`), `{"error":{"code":"x","message":"\"\u003cq\u003e\""}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(tt.body.Encode()); got != tt.want {
				t.Fatalf("Encode\n got %s\nwant %s", got, tt.want)
			}
			back, ok := DecodeError([]byte(tt.want))
			if !ok || back.Error.Code != tt.body.Error.Code || back.Error.Message != tt.body.Error.Message ||
				len(back.Error.Fields) != len(tt.body.Error.Fields) || back.Title != tt.body.Title {
				t.Fatalf("DecodeError = %+v, %v", back, ok)
			}
		})
	}
	for _, raw := range []string{"", "<html>502</html>", `{"code":"x"}`, `{"error":null}`, `[1]`} {
		if b, ok := DecodeError([]byte(raw)); ok {
			t.Fatalf("DecodeError(%q) = %+v, want not an error body", raw, b)
		}
	}
}

func TestEventGapAndTime(t *testing.T) {
	t.Parallel()
	gap := Event{Stream: "s", Seq: 9, Type: TypeGap, Data: json.RawMessage(`{"from":3,"to":9}`)}
	if from, to, ok := gap.GapRange(); !ok || from != 3 || to != 9 {
		t.Fatalf("GapRange = %d, %d, %v", from, to, ok)
	}
	if _, _, ok := (Event{Type: "tick", Data: json.RawMessage(`{"from":1,"to":2}`)}).GapRange(); ok {
		t.Fatal("a data event read as a gap")
	}
	// Over SSE no time travels: it is left out, not written as year 1.
	b, _ := json.Marshal(Event{Stream: "s", Seq: 1, Type: "t", Data: json.RawMessage(`1`)})
	if string(b) != `{"stream":"s","seq":1,"type":"t","data":1}` {
		t.Fatalf("zero time: %s", b)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, _ = json.Marshal(Event{Stream: "s", Seq: 1, Type: "t", Time: at, Data: json.RawMessage(`1`)})
	if string(b) != `{"stream":"s","seq":1,"type":"t","time":"2026-01-02T03:04:05Z","data":1}` {
		t.Fatalf("with time: %s", b)
	}
}

// The cluster view keeps the shape the cluster routes and livedoc read.
func TestClusterShape(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	single, _ := json.Marshal(Cluster{Mode: ModeSingle, Node: "n1", Nodes: []Node{{Name: "n1", Health: HealthUp, Self: true, Emitters: 2}}})
	if string(single) != `{"mode":"single","node":"n1","nodes":[{"name":"n1","health":"up","self":true,"emitters":2}]}` {
		t.Fatalf("single node: %s", single)
	}
	c := Cluster{Mode: ModeEmbedded, Name: "c", Node: "n1", Replicas: 3,
		Nodes: []Node{{Name: "n2", Advertise: "10.0.0.2:9000", Health: HealthDown, Version: "1", LastSeen: seen}},
		NATS: &NATSState{Connected: true, Server: "nats://127.0.0.1:4222", Routes: []Route{{Remote: "n2", Addr: "10.0.0.2:6222"}},
			JetStream: JetStreamState{Enabled: true, MetaLeader: "n1", Streams: 4, Consumers: 5, Bytes: 6}}}
	b, _ := json.Marshal(c)
	want := `{"mode":"embedded","name":"c","node":"n1","replicas":3,"nodes":[{"name":"n2","advertise":"10.0.0.2:9000","health":"down","emitters":0,"version":"1","last_seen":"2026-01-02T03:04:05Z"}],` +
		`"nats":{"connected":true,"server":"nats://127.0.0.1:4222","routes":[{"remote":"n2","addr":"10.0.0.2:6222"}],"jetstream":{"enabled":true,"meta_leader":"n1","streams":4,"consumers":5,"bytes":6}}}`
	if string(b) != want {
		t.Fatalf("cluster\n got %s\nwant %s", b, want)
	}
}
