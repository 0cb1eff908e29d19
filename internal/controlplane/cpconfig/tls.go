package cpconfig

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/kubesvc/kubesvc/internal/certs"
)

// ServerTLS reads the gRPC server's certificate, key and trust bundle
// (kubesvc.grpc.server.security.*) and returns the TLS configuration for
// agents, and the subject filter (kubesvc.grpc.auth.x509.*) when enabled.
// With security disabled it returns nil, nil, nil: plaintext. Rotated files
// are picked up on later handshakes; a rotation that cannot be loaded is
// logged on log and the previous files stay in use.
func (c *Config) ServerTLS(log *slog.Logger) (*tls.Config, *certs.Filter, error) {
	sec := c.GRPC.Security
	if !sec.Enabled {
		return nil, nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	auth := map[ClientAuth]tls.ClientAuthType{
		ClientAuthNone: tls.NoClientCert, ClientAuthOptional: tls.VerifyClientCertIfGiven, ClientAuthRequire: tls.RequireAndVerifyClientCert,
	}[sec.ClientAuth]
	cfg, err := certs.NewServer(certs.ServerOptions{
		CertificateChain: sec.CertificateChain, PrivateKey: sec.PrivateKey, PrivateKeyPassword: sec.PrivateKeyPassword,
		ClientAuth: auth, TrustCertCollection: sec.TrustCertCollection,
		MinVersion: sec.MinVersion, MaxVersion: sec.MaxVersion, CipherSuites: sec.CipherSuites,
		OnReloadError: func(err error) {
			log.Error("gRPC TLS: rotated certificate files could not be loaded; still serving the previous ones", "err", err)
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kubesvc.grpc.server.security: %w", err)
	}
	if !c.GRPC.X509.Enabled {
		return cfg, nil, nil
	}
	filter, err := certs.NewFilter(c.GRPC.X509.Filters)
	if err != nil {
		return nil, nil, fmt.Errorf("kubesvc.grpc.auth.x509.filters: %w", err)
	}
	return cfg, filter, nil
}
