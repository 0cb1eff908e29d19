package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/certs"
	"github.com/kubesvc/kubesvc/internal/certs/certstest"
	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

// runServer runs a control plane on loopback ports and SQLite until the
// test ends and returns its gRPC address.
func runServer(t *testing.T, cfg Config) string {
	t.Helper()
	st := storetest.SQLite(t)
	cfg.ID, cfg.GRPCAddr, cfg.HTTPAddr = "cp-test", "127.0.0.1:0", "127.0.0.1:0"
	g, _ := runOn(t, cfg, st)
	return g.String()
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// With x509 subject filtering, the health service answers a TLS client
// without a certificate, and the agents' service refuses it, naming why;
// with the health service disabled, health checks are UNIMPLEMENTED.
func TestHealthServiceAndSubjectFilter(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	leaf := ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	serverTLS, err := certs.NewServer(certs.ServerOptions{
		CertificateChain: certstest.Write(t, dir, "tls.crt", leaf.CertPEM), PrivateKey: certstest.Write(t, dir, "tls.key", leaf.KeyPEM),
		ClientAuth: tls.VerifyClientCertIfGiven, TrustCertCollection: certstest.Write(t, dir, "ca.crt", ca.PEM),
	})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := certs.NewFilter([]string{"CN=agent"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	conn := dial(t, runServer(t, Config{TLS: serverTLS, ClientSubjects: filter}), creds)
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: kubesvcv1.AgentService_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check without a client certificate: %v, %v; want SERVING", resp, err)
	}
	stream, err := kubesvcv1.NewAgentServiceClient(conn).Connect(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "client certificate is required") {
		t.Fatalf("Connect without a client certificate: %v, want PERMISSION_DENIED", err)
	}

	conn = dial(t, runServer(t, Config{TLS: serverTLS, NoHealthService: true}), creds)
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("health check with the service disabled: %v, want UNIMPLEMENTED", err)
	}
}

// Subject filtering without client certificates would let every agent in:
// the configuration is refused.
func TestSubjectFilterNeedsClientCertificates(t *testing.T) {
	filter, err := certs.NewFilter([]string{"CN=agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{ClientSubjects: filter}, {ClientSubjects: filter, TLS: &tls.Config{ClientAuth: tls.NoClientCert}}} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kubesvc.grpc.auth.x509") {
			t.Errorf("TLS %v: Validate = %v, want an error naming kubesvc.grpc.auth.x509", c.TLS != nil, err)
		}
	}
}
