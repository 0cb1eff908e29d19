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
	auth := map[ClientAuth]tls.ClientAuthType{
		ClientAuthNone: tls.NoClientCert, ClientAuthOptional: tls.VerifyClientCertIfGiven, ClientAuthRequire: tls.RequireAndVerifyClientCert,
	}[sec.ClientAuth]
	cfg, err := newServerTLS("kubesvc.grpc.server.security", "gRPC TLS", log, certs.ServerOptions{
		CertificateChain: sec.CertificateChain, PrivateKey: sec.PrivateKey, PrivateKeyPassword: sec.PrivateKeyPassword,
		ClientAuth: auth, TrustCertCollection: sec.TrustCertCollection,
		MinVersion: sec.MinVersion, MaxVersion: sec.MaxVersion, CipherSuites: sec.CipherSuites,
	})
	if err != nil {
		return nil, nil, err
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

// RESTTLS reads the REST API's certificate, key and client trust bundle
// (server.ssl.*) and returns its TLS configuration (HTTP/2 and 1.1), or
// nil when server.ssl.enabled is false. Rotated files are picked up as for
// gRPC.
func (c *Config) RESTTLS(log *slog.Logger) (*tls.Config, error) {
	ssl := c.Server.SSL
	if !ssl.Enabled {
		return nil, nil
	}
	auth := map[string]tls.ClientAuthType{
		SSLClientAuthNone: tls.NoClientCert, SSLClientAuthWant: tls.VerifyClientCertIfGiven, SSLClientAuthNeed: tls.RequireAndVerifyClientCert,
	}[ssl.ClientAuth]
	return newServerTLS("server.ssl", "REST TLS", log, certs.ServerOptions{
		CertificateChain: ssl.Certificate, PrivateKey: ssl.CertificatePrivateKey, PrivateKeyPassword: ssl.KeyPassword,
		ClientAuth: auth, TrustCertCollection: ssl.TrustCertificate,
		MinVersion: ssl.MinVersion, MaxVersion: ssl.MaxVersion, CipherSuites: ssl.CipherSuites,
		NextProtos: []string{"h2", "http/1.1"},
	})
}

// newServerTLS builds a server TLS configuration whose failed reloads are
// logged (as what) and whose errors name the configuration key.
func newServerTLS(key, what string, log *slog.Logger, o certs.ServerOptions) (*tls.Config, error) {
	if log == nil {
		log = slog.Default()
	}
	o.OnReloadError = func(err error) {
		log.Error(what+": rotated certificate files could not be loaded; still serving the previous ones", "err", err)
	}
	cfg, err := certs.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return cfg, nil
}

// PeerTLS returns the TLS configuration of this replica's requests to the
// other replicas' REST API (nil when server.ssl.enabled is false): their
// certificates verified against kubesvc.peerTls.caFile, else
// server.ssl.trust-certificate, else the system's roots, for the name
// kubesvc.peerTls.serverName (else their URL's host); and this replica's
// own REST certificate presented when they ask for one (client-auth want
// or need), so it must allow client authentication (extended key usage
// clientAuth, or none at all).
func (c *Config) PeerTLS(log *slog.Logger) (*tls.Config, error) {
	ssl := c.Server.SSL
	if !ssl.Enabled {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	ca := c.Cluster.PeerCAFile
	if ca == "" {
		ca = ssl.TrustCertificate
	}
	cfg, err := certs.NewClient(certs.ClientOptions{
		CACertFile: ca, ServerName: c.Cluster.PeerServerName,
		ClientCertFile: ssl.Certificate, ClientKeyFile: ssl.CertificatePrivateKey, ClientKeyPassword: ssl.KeyPassword,
		OnReloadError: func(err error) {
			log.Error("peer TLS: a rotated REST certificate or peer CA bundle could not be loaded; still using the previous one", "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubesvc.peerTls: %w", err)
	}
	return cfg, nil
}
