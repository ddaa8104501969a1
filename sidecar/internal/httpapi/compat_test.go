package httpapi

import (
	"strings"
	"testing"
)

func TestCheckCompat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names []string
		want  string // "" = accepted, else part of the error
	}{
		{nil, ""},
		{[]string{"realtimer"}, ""},
		{[]string{"pexservice", "sse-prototype"}, ""},
		{[]string{"realtimer", "sse-prototype"}, ""},
		{[]string{"sse-prototype", "sse-prototype"}, ""},
		{[]string{"realtimer", "pexservice"}, "realtimer and pexservice collide: realtimer's GET /{user} and pexservice's GET /current"},
		{[]string{"zaqar"}, `unknown system "zaqar"`},
	} {
		err := CheckCompat(tc.names)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckCompat(%q) = %v, want %q", tc.names, err, tc.want)
		}
	}
}

// The compat routes answer as the earlier systems did, and realtimer's
// GET /{user} shadows none of the product's routes.
func TestCompatRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Compat: []string{"realtimer", "sse-prototype"}})
	for _, tc := range []struct {
		method, path string
		code         int
		body         string // part of the answer
	}{
		{"GET", "/alice?data=hello", 200, "ok"},
		{"GET", "/alice", 400, `"field":"data"`},
		{"GET", "/bad%20name?data=x", 400, "invalid user"},
		{"GET", "/healthz", 200, `"status":"ok"`},
		{"GET", "/fib", 200, `"/fib/next"`},
		{"GET", "/", 302, ""},
		{"GET", "/log/sse/nope", 404, `"code":"not_found"`},
		{"GET", "/track/alice?data=again", 202, `"seq":2`},
	} {
		code, _, body := e.do(tc.method, tc.path, "")
		if code != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
	pex := newEnv(t, Options{Compat: []string{"pexservice"}})
	for _, tc := range []struct{ path, body string }{
		{"/", "/next"}, {"/next", "1\n"}, {"/next", "1\n"}, {"/next", "2\n"}, {"/current", "2\n"},
		{"/previous", "1\n"}, {"/reset", "0\n"}, {"/current", "0\n"},
	} {
		code, h, body := pex.do("GET", tc.path, "")
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(string(body), tc.body) {
			t.Errorf("pexservice GET %s: %d %q %q, want %q", tc.path, code, h.Get("Content-Type"), body, tc.body)
		}
	}
}
