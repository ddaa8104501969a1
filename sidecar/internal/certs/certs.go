// Package certs serves the sidecar's TLS certificate from a PEM pair of
// files and reloads it when asked (SIGHUP), so a renewed certificate
// takes effect without a restart. New connections get the pair loaded
// last; a reload that fails keeps the previous one.
package certs

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Reloader holds the current certificate of a cert/key file pair.
type Reloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// New loads the pair; an unreadable or mismatched pair is an error
// naming both files.
func New(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On error the previous certificate stays.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cur.Store(&c)
	return nil
}

// Config is a server TLS configuration serving the current certificate:
// TLS 1.2 and later, HTTP/1.1 by ALPN (the API's streams and WebSockets
// run on Hertz's HTTP/1.1 server).
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cur.Load(), nil
		},
	}
}
