package e2e

import (
	"bufio"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A tracker publish that is not UTF-8 is refused with 400 invalid_utf8
// before it is stored, so `tail --transport ws` of that user reads the
// next good event (before, the bad one was stored, sent in a WebSocket
// text frame tail could not read, and resumed on forever). A message id
// with an encoded dot segment is a 400 too, not a redirect.
func TestBadInputRefusedAtTheDoor(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	a := send(t, http.MethodPost, sc.URL("/track/alice"), "\"\xff\xfe\"", nil)
	if a.status != http.StatusBadRequest || a.errorCode() != "invalid_utf8" {
		t.Fatalf("publish of invalid UTF-8: %d %s, want 400 invalid_utf8", a.status, a.body)
	}
	q := map[string]string{"X-Project-Id": "p1", "Client-ID": "3f1e9a3c-1111-4111-8111-111111111111"}
	a = send(t, http.MethodPost, sc.URL("/v2/queues/q1/messages"), "{\"messages\":[{\"ttl\":60,\"body\":\"\xc3\"}]}", q)
	if a.status != http.StatusBadRequest || a.errorCode() != "invalid_utf8" {
		t.Fatalf("queue post of invalid UTF-8: %d %s, want 400 invalid_utf8", a.status, a.body)
	}
	a = send(t, http.MethodGet, sc.URL("/v2/queues/q1/messages/..%2f..%2fq2"), "", q)
	if a.status != http.StatusBadRequest || a.errorCode() != "invalid_path" {
		t.Fatalf("message id with ..%%2f: %d %s, want 400 invalid_path", a.status, a.body)
	}
	a = send(t, http.MethodPost, sc.URL("/track/alice"), `"ok"`, nil)
	if a.status != http.StatusAccepted || string(a.body) != `{"seq":1}` {
		t.Fatalf("good publish: %d %s, want seq 1", a.status, a.body)
	}

	tail := exec.Command(binary, "tail", "--server", "http://"+sc.addr, "--transport", "ws", "--after", "0", "track:alice")
	out, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		done <- tail.Wait()
	}()
	select {
	case l := <-line:
		if l != `"ok"` {
			t.Fatalf("tail printed %q first, want \"ok\"", l)
		}
	case <-time.After(30 * time.Second):
		_ = tail.Process.Kill()
		t.Fatal("tail printed nothing within 30s")
	}
	_ = tail.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = tail.Process.Kill()
		<-done
		t.Fatal("tail did not exit on SIGINT")
	}
	if code := tail.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("tail exited %d on SIGINT, want 0", code)
	}
}
