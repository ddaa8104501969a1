package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority made by the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sidestream e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for 127.0.0.1 named cn to certFile
// and keyFile.
func (ca *testCA) issue(t *testing.T, cn, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed, as a certificate manager would.
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTLS: with --tls-cert/--tls-key the sidecar serves HTTPS (auth,
// REST and an SSE stream through it), the CLI reaches it with --ca and
// refuses it without, and SIGHUP makes new connections get a renewed
// certificate while the process keeps serving.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	ca.issue(t, "first", certFile, keyFile, 2)
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--auth-token-file", writeTokenFile(t))
	base := "https://" + sc.addr
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true, ForceAttemptHTTP2: true}}
	served := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tokAlpha)
		return hc.Do(req)
	}

	resp, err := served("/api/v1/emitters")
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("GET over TLS: %d, proto %s", resp.StatusCode, resp.Proto)
	}
	// Hertz serves HTTP/1.1; an HTTP/2-capable client negotiates it.
	if resp.Proto != "HTTP/1.1" || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("protocol %s, ALPN %q, want HTTP/1.1 by ALPN", resp.Proto, resp.TLS.NegotiatedProtocol)
	}

	sse, err := served("/sse/fib")
	if err != nil || sse.StatusCode != 200 {
		t.Fatalf("SSE over TLS: %v %v", sse, err)
	}
	r := bufio.NewReader(sse.Body)
	line, err := r.ReadString('\n')
	for ; err == nil && !strings.HasPrefix(line, "id:") && !strings.HasPrefix(line, "data:") && !strings.HasPrefix(line, "retry:") && !strings.HasPrefix(line, ":"); line, err = r.ReadString('\n') {
	}
	sse.Body.Close()
	if err != nil {
		t.Fatalf("SSE over TLS: %v", err)
	}

	cli := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"plugins", "list", "--server", base, "--token", tokAlpha}, args...)...)
		cmd.Env = cliEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli("--ca", caFile); err != nil || !strings.Contains(out, "magic") {
		t.Errorf("plugins list --ca: %v\n%s", err, out)
	}
	if out, err := cli(); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("plugins list without --ca: %v\n%s, want a certificate error", err, out)
	}
	// The queue commands open their own WebSocket: the same --ca.
	produce := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"queue", "produce", "--count", "3", "--queue", "tls", "--server", base, "--token", tokAlpha}, args...)...)
		cmd.Env = cliEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := produce("--ca", caFile); err != nil {
		t.Errorf("queue produce --ca over TLS: %v\n%s", err, out)
	}
	if out, err := produce(); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("queue produce without --ca: %v\n%s, want a certificate error", err, out)
	}

	ca.issue(t, "second", certFile, keyFile, 3)
	if err := sc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new connections get the renewed certificate", 30*time.Second, func() bool {
		resp, err := served("/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName == "second"
	})
	if !strings.Contains(sc.Logs(), "tls certificate reloaded") {
		t.Error("no log line says the certificate was reloaded")
	}
}
