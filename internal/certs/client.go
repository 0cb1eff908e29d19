package certs

import (
	"crypto/tls"
	"fmt"
)

// ClientOptions describe the agent's TLS towards the control plane.
type ClientOptions struct {
	// CACertFile is the bundle the server's certificate is verified
	// against; "" uses the system's roots. It is read once.
	CACertFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// ClientCertFile and ClientKeyFile are the client certificate for
	// mTLS; ClientKeyFile "" means the key is in ClientCertFile. The pair
	// is read again after the files change, on the next handshake that
	// asks for it.
	ClientCertFile, ClientKeyFile, ClientKeyPassword string
	// OnReloadError is told when a rotated client certificate could not
	// be loaded (the previous one stays in use).
	OnReloadError func(error)
}

// NewClient reads the files and returns the client's TLS configuration.
func NewClient(o ClientOptions) (*tls.Config, error) {
	c := &tls.Config{ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if o.CACertFile != "" {
		pool, err := loadPool(Path(o.CACertFile))
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if o.ClientCertFile == "" {
		if o.ClientKeyFile != "" {
			return nil, fmt.Errorf("a client key without a client certificate")
		}
		return c, nil
	}
	certFile, keyFile := Path(o.ClientCertFile), Path(o.ClientKeyFile)
	if keyFile == "" {
		keyFile = certFile
	}
	pair, err := newReloading([]string{certFile, keyFile}, func() (*tls.Certificate, error) {
		return loadKeyPair(certFile, keyFile, o.ClientKeyPassword)
	}, o.OnReloadError)
	if err != nil {
		return nil, err
	}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get(), nil }
	return c, nil
}
