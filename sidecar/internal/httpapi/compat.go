package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/api"
)

// The earlier systems whose exact paths --compat serves, so their clients,
// scripts and load tests run unchanged (docs/MIGRATING.md).
const (
	CompatRealtimer    = "realtimer"
	CompatPexservice   = "pexservice"
	CompatSSEPrototype = "sse-prototype"
)

// CompatSystems are the names --compat accepts.
var CompatSystems = []string{CompatRealtimer, CompatPexservice, CompatSSEPrototype}

// compatRoutes returns the routes of one earlier system. The handlers are
// the product's own (tracker, fib emitter, log streams); only the path and
// the answer's shape are the earlier system's.
func (s *Server) compatRoutes(name string) routeTable {
	switch name {
	case CompatRealtimer:
		return routeTable{
			// The realtimer's WebSocket server listened on its own port with
			// the path /ws; here it shares the HTTP port.
			{"GET", "/ws", s.realtimerWS, read, true},
			{"GET", "/:user", s.realtimerPublish, write, false},
		}
	case CompatPexservice:
		r := routeTable{{"GET", "/", s.pexIndex, public, false}}
		for _, name := range fibCommands {
			scope := write
			if name == "current" {
				scope = read
			}
			r = append(r, route{"GET", "/" + name, s.pexCommand(name), scope, false})
		}
		return r
	case CompatSSEPrototype:
		// The Gatling simulation read /log/sse/{id}.
		return routeTable{{"GET", "/log/sse/:id", s.emitterSSE("id"), read, true}}
	}
	return nil
}

// CheckCompat refuses unknown names and choices whose routes collide (a
// path one serves that a pattern of the other matches: realtimer's
// GET /{user} would take pexservice's GET /next for a user named next).
func CheckCompat(names []string) error {
	probe := &Server{}
	for i, a := range names {
		if !slices.Contains(CompatSystems, a) {
			return fmt.Errorf("compat: unknown system %q (want %s)", a, strings.Join(CompatSystems, ", "))
		}
		for _, b := range names[:i] {
			if a == b {
				continue
			}
			for _, ra := range probe.compatRoutes(a) {
				for _, rb := range probe.compatRoutes(b) {
					if ra.Method == rb.Method && pathsOverlap(ra.Path, rb.Path) {
						return fmt.Errorf("compat: %s and %s collide: %s's %s %s and %s's %s %s match the same requests; serve them from two sidestream processes",
							b, a, b, rb.Method, docPath(rb.Path), a, ra.Method, docPath(ra.Path))
					}
				}
			}
		}
	}
	return nil
}

// pathsOverlap reports whether some request path matches both patterns.
func pathsOverlap(a, b string) bool {
	sa, sb := strings.Split(strings.Trim(a, "/"), "/"), strings.Split(strings.Trim(b, "/"), "/")
	if len(sa) != len(sb) || (a == "/") != (b == "/") {
		return false
	}
	for i := range sa {
		if sa[i] != sb[i] && !strings.HasPrefix(sa[i], ":") && !strings.HasPrefix(sb[i], ":") {
			return false
		}
	}
	return true
}

// docPath writes a Hertz pattern as the documents do (/{user}).
func docPath(p string) string {
	seg := strings.Split(p, "/")
	for i, s := range seg {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			seg[i] = "{" + name + "}"
		}
	}
	return strings.Join(seg, "/")
}

// withCompat adds the chosen systems' routes to the table. A compat route
// on a path the table already serves replaces it (pexservice's / is its
// index, not the redirect to livedoc); the router prefers a static path
// to a parameter, so realtimer's /{user} never shadows another route.
func (s *Server) withCompat(t routeTable, names []string) routeTable {
	for _, name := range names {
		for _, r := range s.compatRoutes(name) {
			i := slices.IndexFunc(t, func(o route) bool { return o.Method == r.Method && o.Path == r.Path })
			if i >= 0 {
				t[i] = r
				continue
			}
			t = append(t, r)
		}
	}
	return t
}

// realtimerEvent is what the realtimer's WebSocket sent for a publish.
type realtimerEvent struct {
	AccountID string `json:"accountId"`
	Data      string `json:"data"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
}

// realtimerPublish is the realtimer's GET /{user}?data=: the value goes to
// the user's tracker stream (/track/{user}, /ws/track/{user} see it) and
// to the realtimer's firehose (/ws); the answer is its plain "ok", sent
// once the publish is durable.
func (s *Server) realtimerPublish(ctx context.Context, c *app.RequestContext) error {
	q, ok := c.GetQuery("data")
	if !ok {
		return fieldError("invalid", "data", "is required (?data=)")
	}
	user, err := trackUser(c, c.Param("user"))
	if err != nil {
		return err
	}
	if _, err := s.d.Tracker.PublishString(ctx, user, q); err != nil {
		return err
	}
	fh, err := s.firehose(ctx, c)
	if err != nil {
		return err
	}
	ev, _ := json.Marshal(realtimerEvent{AccountID: c.Param("user"), Data: q, Timestamp: time.Now().UnixMilli()})
	if _, err := fh.Publish(ctx, []event.Draft{{Type: "realtimer", Time: time.Now(), Data: ev}}, nil); err != nil {
		return err
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
	return nil
}

// realtimerWS is the realtimer's /ws: every publish of the tenant's users
// made on this node through GET /{user}, one text frame each holding the
// realtimer's {"accountId","data","timestamp"} (its clients filter by
// accountId themselves).
func (s *Server) realtimerWS(ctx context.Context, c *app.RequestContext) error {
	fh, err := s.firehose(ctx, c)
	if err != nil {
		return err
	}
	return s.serveWSFrames(ctx, c, fh, true)
}

// firehose opens the tenant's realtimer stream: in memory only (the
// realtimer kept no history), on this node.
func (s *Server) firehose(ctx context.Context, c *app.RequestContext) (*stream.Stream, error) {
	name := "realtimer:ws"
	if t, _ := tenant(c); t != "" {
		name += ":" + t
	}
	return s.d.Streams.Open(ctx, name, stream.Config{})
}

// pexIndex is pexservice's / : plain text naming the endpoints.
func (s *Server) pexIndex(_ context.Context, c *app.RequestContext) error {
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(pexIndexText))
	return nil
}

const pexIndexText = `sidestream, serving pexservice's Fibonacci endpoints (--compat pexservice)

Try the following end points (GET; each answers the number as plain text):
 /current   the current Fibonacci number
 /next      move to the next number and show it
 /previous  move back one number and show it (stays at 0)
 /reset     back to the beginning (0)

The state is durable: it survives a crash. The same sequence is /fib/* in JSON
and /sse/fib as a stream; see /livedoc.
`

// pexCommand runs a command on the shared fib emitter and answers the
// value as pexservice did: the decimal number and a newline.
func (s *Server) pexCommand(name string) handler {
	return func(ctx context.Context, c *app.RequestContext) error {
		res, err := s.d.Emitters.Command(ctx, "fib", name, nil)
		if err != nil {
			return err
		}
		var r api.FibState
		if err := json.Unmarshal(res, &r); err != nil || !isDecimal(r.Value) {
			return fmt.Errorf("fib %s: unexpected result %s", name, res)
		}
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(r.Value+"\n"))
		return nil
	}
}

func isDecimal(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
