package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestHealthAndRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	code, _, body := e.do("GET", "/healthz", "")
	if code != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, hdr, _ := e.do("GET", "/", "")
	if code != http.StatusFound || hdr.Get("Location") != "/livedoc" {
		t.Fatalf("/: %d %v", code, hdr)
	}
	code, _, body = e.do("PUT", "/log", "")
	var got struct{ ID string }
	if code != 201 || json.Unmarshal(body, &got) != nil || got.ID == "" {
		t.Fatalf("PUT /log: %d %s", code, body)
	}
}
