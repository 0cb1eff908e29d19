package agent

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kubesvc/kubesvc/internal/certs/certstest"
)

// TLS on one end only is named as the likely cause of the failure to
// connect, whichever end has it.
func TestConnectHintsNameTLSMismatch(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "hint CA")
	leaf := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for name, c := range map[string]struct {
		server    []grpc.ServerOption
		clientTLS *tls.Config
		target    string // default: the test's server
		want      string
	}{
		// The name resolver says "produced zero addresses", not "no such host".
		"host that does not resolve": {target: "nosuchhost.invalid:9091", want: "clouddriver.grpc does not resolve"},
		"plaintext agent, TLS control plane": {server: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))},
			want: "clouddriver.insecure: false"},
		"TLS agent, plaintext control plane": {clientTLS: &tls.Config{RootCAs: pool, ServerName: "localhost"},
			want: "clouddriver.insecure: true"},
	} {
		t.Run(name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer(c.server...)
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			attempts := &attemptLog{}
			target := lis.Addr().String()
			if c.target != "" {
				target = c.target
			}
			a, err := New(Config{Target: target, ID: "agent", ZoneID: "z", TLS: c.clientTLS, Log: slog.New(attempts),
				Backoff: Backoff{BaseDelay: 100 * time.Millisecond, Multiplier: 1, MaxDelay: 100 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			runAgent(t, a)
			deadline := time.Now().Add(20 * time.Second)
			for {
				attempts.mu.Lock()
				var last attemptFailure
				if n := len(attempts.failures); n > 0 {
					last = attempts.failures[n-1]
				}
				attempts.mu.Unlock()
				if strings.Contains(last.hint, c.want) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("last failure: %q, hint %q; want a hint with %q", last.err, last.hint, c.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
