package queueapi

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

type msgsBody struct {
	Messages []api.QueueMessage `json:"messages"`
	Links    []link             `json:"links"`
}

func TestRESTQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	h := hdrs("p1", "")
	if r := e.do("PUT", "/v2/queues/q1", `{"color":"red"}`, h); r.code != 201 || r.hdr.Get("Location") != "/v2/queues/q1" {
		t.Fatalf("create: %d %q", r.code, r.hdr.Get("Location"))
	}
	if r := e.do("PUT", "/v2/queues/q1", ``, h); r.code != 204 {
		t.Fatalf("create again: %d", r.code)
	}
	for _, q := range []string{"q2", "q3"} {
		e.do("PUT", "/v2/queues/"+q, ``, h)
	}
	var page struct {
		Queues []queueOut `json:"queues"`
		Links  []link     `json:"links"`
	}
	r := e.do("GET", "/v2/queues?limit=2&detailed=true", ``, h)
	r.json(t, &page)
	if r.code != 200 || len(page.Queues) != 2 || page.Queues[0].Name != "q1" || string(page.Queues[0].Metadata) != `{"color":"red"}` {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	next := page.Links[0].Href
	e.do("GET", next, ``, h).json(t, &page)
	if len(page.Queues) != 1 || page.Queues[0].Name != "q3" || page.Queues[0].Href != "/v2/queues/q3" {
		t.Fatalf("next page %s: %+v", next, page.Queues)
	}
	if r := e.do("GET", "/v2/queues/q1", ``, h); r.code != 200 || string(r.body) != `{"color":"red"}` {
		t.Fatalf("get metadata: %d %s", r.code, r.body)
	}
	patch := `[{"op":"replace","path":"/metadata/color","value":"blue"},{"op":"add","path":"/metadata/_default_message_ttl","value":120}]`
	ph := withHeader(h, "Content-Type", "application/openstack-messaging-v2.0-json-patch")
	if r := e.do("PATCH", "/v2/queues/q1", patch, ph); r.code != 200 || !strings.Contains(string(r.body), `"blue"`) {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	if r := e.do("PATCH", "/v2/queues/q1", `[{"op":"add","path":"/metadata/_default_message_ttl","value":1}]`, ph); r.code != 400 {
		t.Fatalf("patch with bad reserved ttl: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v2/queues/q2", ``, h); r.code != 204 {
		t.Fatalf("delete: %d", r.code)
	}
	if r := e.do("GET", "/v2/queues/q2", ``, h); r.code != 404 || r.errCode(t) != "queue_not_found" {
		t.Fatalf("get deleted: %d %s", r.code, r.body)
	}
}

func TestRESTMessagesAndClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	hA, hB := hdrs("p1", clientA), hdrs("p1", clientB)
	r := e.do("POST", "/v2/queues/jobs/messages", `{"messages":[{"ttl":300,"body":{"n":1}},{"body":{"n":2}},{"ttl":60,"body":[3]}]}`, hA)
	var posted struct {
		Resources []string `json:"resources"`
	}
	r.json(t, &posted)
	if r.code != 201 || len(posted.Resources) != 3 || !strings.HasPrefix(posted.Resources[0], "/v2/queues/jobs/messages/") {
		t.Fatalf("post: %d %s", r.code, r.body)
	}
	id := func(i int) string { return posted.Resources[i][strings.LastIndexByte(posted.Resources[i], '/')+1:] }
	var lb msgsBody
	e.do("GET", "/v2/queues/jobs/messages", ``, hA).json(t, &lb)
	if len(lb.Messages) != 0 {
		t.Fatalf("own messages listed without echo: %+v", lb.Messages)
	}
	e.do("GET", "/v2/queues/jobs/messages?echo=true&limit=2", ``, hA).json(t, &lb)
	if len(lb.Messages) != 2 || string(lb.Messages[0].Body) != `{"n":1}` || lb.Messages[0].TTL != 300 || lb.Messages[1].TTL != 3600 {
		t.Fatalf("list page 1: %+v", lb.Messages)
	}
	e.do("GET", lb.Links[0].Href, ``, hA).json(t, &lb)
	if len(lb.Messages) != 1 || string(lb.Messages[0].Body) != `[3]` {
		t.Fatalf("list page 2 (%s): %+v", lb.Links[0].Href, lb.Messages)
	}
	var one api.QueueMessage
	if r := e.do("GET", "/v2/queues/jobs/messages/"+id(1), ``, hB); r.code != 200 {
		t.Fatalf("get one: %d %s", r.code, r.body)
	} else if r.json(t, &one); string(one.Body) != `{"n":2}` {
		t.Fatalf("get one: %+v", one)
	}
	if r := e.do("GET", "/v2/queues/jobs/messages/0000000000000099", ``, hB); r.code != 404 || r.errCode(t) != "message_not_found" {
		t.Fatalf("get missing: %d %s", r.code, r.body)
	}
	e.do("GET", "/v2/queues/jobs/messages?ids="+id(2)+","+id(0), ``, hB).json(t, &lb)
	if len(lb.Messages) != 2 || lb.Messages[0].ID != id(2) {
		t.Fatalf("get many: %+v", lb.Messages)
	}

	r = e.do("POST", "/v2/queues/jobs/claims?limit=2", `{"ttl":120,"grace":60}`, hB)
	var claim struct {
		ClaimID  string             `json:"claim_id"`
		Messages []api.QueueMessage `json:"messages"`
	}
	r.json(t, &claim)
	if r.code != 201 || len(claim.Messages) != 2 || r.hdr.Get("Location") != "/v2/queues/jobs/claims/"+claim.ClaimID {
		t.Fatalf("claim: %d %s %q", r.code, r.body, r.hdr.Get("Location"))
	}
	if !strings.HasSuffix(claim.Messages[0].Href, "?claim_id="+claim.ClaimID) {
		t.Fatalf("claimed href %q lacks the claim", claim.Messages[0].Href)
	}
	cl := "/v2/queues/jobs/claims/" + claim.ClaimID
	if r := e.do("GET", cl, ``, hB); r.code != 200 || !strings.Contains(string(r.body), `"ttl":120`) {
		t.Fatalf("get claim: %d %s", r.code, r.body)
	}
	if r := e.do("PATCH", cl, `{"ttl":300}`, hB); r.code != 204 {
		t.Fatalf("renew: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v2/queues/jobs/messages/"+id(0), ``, hB); r.code != 403 || r.errCode(t) != "claimed" {
		t.Fatalf("delete claimed without claim: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", claim.Messages[0].Href, ``, hB); r.code != 204 {
		t.Fatalf("delete with claim href: %d %s", r.code, r.body)
	}
	var st struct {
		Messages struct{ Free, Claimed, Total int } `json:"messages"`
	}
	e.do("GET", "/v2/queues/jobs/stats", ``, hA).json(t, &st)
	if st.Messages.Free != 1 || st.Messages.Claimed != 1 || st.Messages.Total != 2 {
		t.Fatalf("stats: %+v", st)
	}
	if r := e.do("DELETE", cl, ``, hB); r.code != 204 {
		t.Fatalf("release: %d", r.code)
	}
	if r := e.do("POST", "/v2/queues/jobs/claims", `{"ttl":60}`, hB); r.code != 201 {
		t.Fatalf("claim after release: %d", r.code)
	}
	if r := e.do("POST", "/v2/queues/jobs/claims", `{}`, hB); r.code != 204 {
		t.Fatalf("claim with nothing free: %d %s", r.code, r.body)
	}
	r = e.do("DELETE", "/v2/queues/other/messages?pop=5", ``, hB)
	if r.code != 200 {
		t.Fatalf("pop empty: %d %s", r.code, r.body)
	}
	e.do("POST", "/v2/queues/other/messages", `{"messages":[{"body":1},{"body":2}]}`, hA)
	e.do("DELETE", "/v2/queues/other/messages?pop=1", ``, hB).json(t, &lb)
	if len(lb.Messages) != 1 || string(lb.Messages[0].Body) != "1" {
		t.Fatalf("pop: %+v", lb.Messages)
	}
}

func TestRESTBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	big := fmt.Sprintf(`{"messages":[{"body":"%s"}]}`, strings.Repeat("x", 300<<10))
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		code                     int
		errCode                  string
	}{
		{"name too long", "PUT", "/v2/queues/" + strings.Repeat("a", 65), ``, hdrs("p", ""), 400, "invalid"},
		{"name with dot", "PUT", "/v2/queues/a.b", ``, hdrs("p", ""), 400, "invalid"},
		{"no project", "PUT", "/v2/queues/q", ``, hdrs("", ""), 400, "missing_project_id"},
		{"metadata not object", "PUT", "/v2/queues/q", `[1]`, hdrs("p", ""), 400, "invalid"},
		{"no client id", "POST", "/v2/queues/q/messages", `{"messages":[{"body":1}]}`, hdrs("p", ""), 400, "invalid_client_id"},
		{"bad client id", "GET", "/v2/queues/q/messages", ``, hdrs("p", "me"), 400, "invalid_client_id"},
		{"malformed json", "POST", "/v2/queues/q/messages", `{"messages":`, hdrs("p", clientA), 400, "malformed_json"},
		{"messages not array", "POST", "/v2/queues/q/messages", `{"messages":{}}`, hdrs("p", clientA), 400, "malformed_json"},
		{"no messages", "POST", "/v2/queues/q/messages", `{"messages":[]}`, hdrs("p", clientA), 400, "invalid"},
		{"no body", "POST", "/v2/queues/q/messages", `{"messages":[{"ttl":100}]}`, hdrs("p", clientA), 400, "invalid"},
		{"ttl too small", "POST", "/v2/queues/q/messages", `{"messages":[{"ttl":59,"body":1}]}`, hdrs("p", clientA), 400, "invalid"},
		{"ttl zero", "POST", "/v2/queues/q/messages", `{"messages":[{"ttl":0,"body":1}]}`, hdrs("p", clientA), 400, "invalid"},
		{"ttl not number", "POST", "/v2/queues/q/messages", `{"messages":[{"ttl":"1h","body":1}]}`, hdrs("p", clientA), 400, "malformed_json"},
		{"message too large", "POST", "/v2/queues/q/messages", big, hdrs("p", clientA), 413, "too_large"},
		{"claim ttl too large", "POST", "/v2/queues/q/claims", `{"ttl":43201}`, hdrs("p", clientA), 400, "invalid"},
		{"claim grace negative", "POST", "/v2/queues/q/claims", `{"ttl":60,"grace":-1}`, hdrs("p", clientA), 400, "invalid"},
		{"claim limit too high", "POST", "/v2/queues/q/claims?limit=101", `{}`, hdrs("p", clientA), 400, "invalid"},
		{"claim limit not number", "POST", "/v2/queues/q/claims?limit=x", `{}`, hdrs("p", clientA), 400, "invalid"},
		{"list limit zero", "GET", "/v2/queues/q/messages?limit=0", ``, hdrs("p", clientA), 400, "invalid"},
		{"echo not bool", "GET", "/v2/queues/q/messages?echo=maybe", ``, hdrs("p", clientA), 400, "invalid"},
		{"delete without ids", "DELETE", "/v2/queues/q/messages", ``, hdrs("p", clientA), 400, "invalid"},
		{"unknown claim", "GET", "/v2/queues/q/claims/2ad8d1a2-0d8e-4d2a-a9a4-6f6c2c7d5d11", ``, hdrs("p", clientA), 404, "claim_not_found"},
		{"patch not array", "PATCH", "/v2/queues/q", `{}`, withHeader(hdrs("p", ""), "Content-Type", "application/json-patch+json"), 400, "malformed_json"},
		{"patch without its media type", "PATCH", "/v2/queues/q", `[]`, hdrs("p", ""), 415, "unsupported_media_type"},
		{"patch as plain JSON", "PATCH", "/v2/queues/q", `[]`, withHeader(hdrs("p", ""), "Content-Type", "application/json"), 415, "unsupported_media_type"},
		{"claim ttl not number", "POST", "/v2/queues/q/claims", `{"ttl":"60"}`, hdrs("p", clientA), 400, "malformed_json"},
		{"message not object", "POST", "/v2/queues/q/messages", `{"messages":[1]}`, hdrs("p", clientA), 400, "malformed_json"},
		{"ttl out of range", "POST", "/v2/queues/q/messages", `{"messages":[{"ttl":1e999,"body":1}]}`, hdrs("p", clientA), 400, "malformed_json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, tc.hdr)
			if r.code != tc.code || r.errCode(t) != tc.errCode {
				t.Fatalf("%d %s, want %d %s", r.code, r.body, tc.code, tc.errCode)
			}
			// Messages speak of the JSON, never of Go's types.
			for _, leak := range []string{"Go ", "queueapi.", "int64", "json:"} {
				if strings.Contains(string(r.body), leak) {
					t.Fatalf("error names Go (%q): %s", leak, r.body)
				}
			}
		})
	}
	var qs struct {
		Queues []queueOut `json:"queues"`
	}
	e.do("GET", "/v2/queues", ``, hdrs("p", "")).json(t, &qs)
	if len(qs.Queues) != 0 {
		t.Fatalf("bad requests created queues: %+v", qs.Queues)
	}
}

// A validation error names its field, over REST and over the WebSocket
// alike, in the one error body.
func TestValidationErrorNamesTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	r := e.do("POST", "/v2/queues/q/claims", `{"ttl":43201}`, hdrs("p", clientA))
	rest := strictError(t, r.code, r.body)
	c := e.dial(http.Header{"X-Project-Id": {"p"}, "Client-ID": {clientA}})
	defer c.Close()
	rep := wsDo(t, c, "claim_create", nil, map[string]any{"queue_name": "q", "ttl": 43201})
	ws := strictError(t, rep.Status, rep.Body)
	for _, got := range []api.ErrorBody{rest, ws} {
		if got.Error.Code != "invalid" || len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != "ttl" || got.Error.Fields[0].Message == "" {
			t.Fatalf("error %+v, want invalid naming ttl", got)
		}
	}
}

// A post's bad TTL names the message it belongs to, whether the API
// (not a positive number) or the service (out of the queue's range)
// refuses it.
func TestPostTTLErrorNamesTheMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(http.Header{"X-Project-Id": {"p"}, "Client-ID": {clientA}})
	defer c.Close()
	for _, ttl := range []int64{-1, 1 << 30} {
		rep := wsDo(t, c, "message_post", nil, map[string]any{"queue_name": "q",
			"messages": []map[string]any{{"body": 1, "ttl": 60}, {"body": 2, "ttl": ttl}}})
		got := strictError(t, rep.Status, rep.Body)
		if got.Error.Code != "invalid" || len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != "messages[1].ttl" {
			t.Fatalf("ttl %d: error %+v, want invalid naming messages[1].ttl", ttl, got)
		}
	}
}

// TestRESTTenantIsolation: with auth on, a token reaches only its own
// tenant's queues, whatever X-Project-Id says.
func TestRESTTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{auth: true, nosync: true})
	a := map[string]string{"Authorization": "Bearer " + tokA, "Client-ID": clientA}
	b := map[string]string{"Authorization": "Bearer " + tokB, "Client-ID": clientB}
	if r := e.do("POST", "/v2/queues/shared/messages", `{"messages":[{"body":"a-secret"}]}`, a); r.code != 201 {
		t.Fatalf("post as A: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/v2/queues/shared/messages", ``, nil); r.code != 401 || r.errCode(t) != "unauthenticated" {
		t.Fatalf("no token: %d %s", r.code, r.body)
	}
	bAsA := map[string]string{"Authorization": "Bearer " + tokB, "Client-ID": clientB, "X-Project-Id": "tenant-a"}
	if r := e.do("GET", "/v2/queues/shared/messages?echo=true", ``, bAsA); r.code != 403 || r.errCode(t) != "forbidden" {
		t.Fatalf("B claiming to be A: %d %s", r.code, r.body)
	}
	var lb msgsBody
	e.do("GET", "/v2/queues/shared/messages?echo=true&include_claimed=true", ``, b).json(t, &lb)
	if len(lb.Messages) != 0 {
		t.Fatalf("B sees A's messages: %+v", lb.Messages)
	}
	var qs struct {
		Queues []queueOut `json:"queues"`
	}
	e.do("GET", "/v2/queues", ``, b).json(t, &qs)
	if len(qs.Queues) != 0 {
		t.Fatalf("B lists A's queues: %+v", qs.Queues)
	}
	var st struct {
		Messages struct{ Total int } `json:"messages"`
	}
	e.do("GET", "/v2/queues/shared/stats", ``, b).json(t, &st)
	if st.Messages.Total != 0 {
		t.Fatalf("B counts A's messages: %+v", st)
	}
	if r := e.do("POST", "/v2/queues/shared/claims", `{}`, b); r.code != 204 {
		t.Fatalf("B claims: %d %s", r.code, r.body)
	}
	e.do("DELETE", "/v2/queues/shared", ``, b)
	ro := map[string]string{"Authorization": "Bearer " + tokRO, "Client-ID": clientA}
	if r := e.do("POST", "/v2/queues/shared/messages", `{"messages":[{"body":1}]}`, ro); r.code != 403 || r.errCode(t) != "insufficient_scope" {
		t.Fatalf("read-only token posting: %d %s", r.code, r.body)
	}
	a["X-Project-Id"] = "tenant-a"
	e.do("GET", "/v2/queues/shared/messages?echo=true", ``, a).json(t, &lb)
	if len(lb.Messages) != 1 || string(lb.Messages[0].Body) != `"a-secret"` {
		t.Fatalf("A's message after B's attempts: %+v", lb.Messages)
	}
	if r := e.do("GET", "/v2/queues/shared/messages", ``, ro); r.code != http.StatusOK {
		t.Fatalf("read-only token listing: %d", r.code)
	}
}

// withHeader returns a copy of h with name set to value.
func withHeader(h map[string]string, name, value string) map[string]string {
	out := maps.Clone(h)
	out[name] = value
	return out
}
