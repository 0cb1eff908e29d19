package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
)

// ClientOptions describe the agent's TLS towards the control plane.
type ClientOptions struct {
	// CACertFile is the bundle the server's certificate is verified
	// against; "" uses the system's roots. With ServerName or Host set it
	// is read again after the file changes, on the next handshake;
	// without, once.
	CACertFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// Host is the server's host name or IP address as dialled, checked in
	// its certificate when ServerName is empty. Leave both empty for a
	// configuration that dials several hosts (each is checked for its own
	// name then).
	Host string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// ClientCertFile and ClientKeyFile are the client certificate for
	// mTLS; ClientKeyFile "" means the key is in ClientCertFile. The pair
	// is read again after the files change, on the next handshake that
	// asks for it.
	ClientCertFile, ClientKeyFile, ClientKeyPassword string
	// OnReloadError is told when a rotated client certificate or CA
	// bundle could not be loaded (the previous one stays in use).
	OnReloadError func(error)
}

// NewClient reads the files and returns the client's TLS configuration.
func NewClient(o ClientOptions) (*tls.Config, error) {
	c := &tls.Config{ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if o.CACertFile != "" {
		file := Path(o.CACertFile)
		pool, err := newReloading([]string{file}, func() (*x509.CertPool, error) { return loadPool(file) }, o.OnReloadError)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool.get()
		name := o.ServerName
		if name == "" {
			name = o.Host
		}
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h // a port, as gRPC takes the name too
		}
		// tls.Config has no hook for roots that change: Go's own check is
		// replaced by the same one against the bundle as it is at each
		// handshake. That needs the name to check; without one (a
		// configuration shared by connections to several hosts), Go
		// checks against the bundle as first read.
		if !o.InsecureSkipVerify && name != "" {
			// Not "verification off": VerifyConnection below does Go's
			// check. Code copying this configuration field by field (or
			// adding ECH, whose rejection path skips the callback) must
			// keep that in mind.
			c.InsecureSkipVerify = true
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return fmt.Errorf("the server sent no certificate")
				}
				opts := x509.VerifyOptions{Roots: pool.get(), DNSName: name, Intermediates: x509.NewCertPool()}
				for _, ic := range cs.PeerCertificates[1:] {
					opts.Intermediates.AddCert(ic)
				}
				if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
					return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
				}
				return nil
			}
		}
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
