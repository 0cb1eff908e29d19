package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ServerOptions describe the control plane's TLS.
type ServerOptions struct {
	// CertificateChain and PrivateKey are the server's certificate chain
	// (leaf first) and key, as paths or file: references. PrivateKey may
	// name the chain's file when both are in it.
	CertificateChain, PrivateKey string
	// PrivateKeyPassword decrypts an encrypted PKCS#8 key.
	PrivateKeyPassword string
	// ClientAuth: tls.NoClientCert, tls.VerifyClientCertIfGiven or
	// tls.RequireAndVerifyClientCert.
	ClientAuth tls.ClientAuthType
	// TrustCertCollection is the bundle client certificates are verified
	// against; required unless ClientAuth is tls.NoClientCert (the system's
	// roots would accept any public certificate).
	TrustCertCollection string
	// MinVersion and MaxVersion bound the TLS versions (0: TLS 1.2 and the
	// highest Go supports).
	MinVersion, MaxVersion uint16
	// CipherSuites restricts the TLS 1.2 suites (nil: Go's defaults). TLS
	// 1.3's suites are not configurable.
	CipherSuites []uint16
	// NextProtos are offered by ALPN; nil: "h2", what gRPC needs. An
	// HTTP server serving both versions passes "h2", "http/1.1".
	NextProtos []string
	// OnReloadError is told when rotated files could not be loaded (the
	// previous certificate or bundle stays in use).
	OnReloadError func(error)
}

// NewServer reads the files and returns the server's TLS configuration,
// which picks up rotated files on later handshakes.
func NewServer(o ServerOptions) (*tls.Config, error) {
	certFile, keyFile := Path(o.CertificateChain), Path(o.PrivateKey)
	if certFile == "" {
		return nil, fmt.Errorf("no certificate chain")
	}
	if keyFile == "" {
		keyFile = certFile
	}
	if o.ClientAuth != tls.NoClientCert && o.TrustCertCollection == "" {
		return nil, fmt.Errorf("client certificates are verified only against a named trust bundle, and none is configured")
	}
	pair, err := newReloading([]string{certFile, keyFile}, func() (*tls.Certificate, error) {
		return loadKeyPair(certFile, keyFile, o.PrivateKeyPassword)
	}, o.OnReloadError)
	if err != nil {
		return nil, err
	}
	base := &tls.Config{
		MinVersion:   orUint16(o.MinVersion, tls.VersionTLS12),
		MaxVersion:   o.MaxVersion,
		CipherSuites: o.CipherSuites,
		ClientAuth:   o.ClientAuth,
		NextProtos:   o.NextProtos,
	}
	if base.NextProtos == nil {
		base.NextProtos = []string{"h2"}
	}
	var pool *reloading[*x509.CertPool]
	if o.ClientAuth != tls.NoClientCert {
		file := Path(o.TrustCertCollection)
		if pool, err = newReloading([]string{file}, func() (*x509.CertPool, error) { return loadPool(file) }, o.OnReloadError); err != nil {
			return nil, err
		}
	}
	// Each handshake gets a copy with the current certificate and bundle.
	// The returned config carries the same GetConfigForClient only to
	// serve callers that clone it (gRPC's credentials do).
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.Certificates = []tls.Certificate{*pair.get()}
		if pool != nil {
			c.ClientCAs = pool.get()
		}
		return c, nil
	}
	// The certificate and bundle as first loaded are set too, so that a
	// caller not using GetConfigForClient still verifies clients against
	// the configured bundle, never the system's roots.
	cfg.Certificates = []tls.Certificate{*pair.get()}
	if pool != nil {
		cfg.ClientCAs = pool.get()
	}
	return cfg, nil
}

func orUint16(v, def uint16) uint16 {
	if v == 0 {
		return def
	}
	return v
}
