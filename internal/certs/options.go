package certs

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

var protocolVersions = map[string]uint16{
	"TLSV1.2": tls.VersionTLS12,
	"TLSV1.3": tls.VersionTLS13,
}

// ParseProtocols reads a list of protocol names as Java writes them
// ("TLSv1.2,TLSv1.3"; commas or spaces between them) into the lowest and
// highest version to accept. TLS 1.0 and 1.1 are refused: they are
// deprecated (RFC 8996). "" gives 0, 0: the defaults.
func ParseProtocols(s string) (minVersion, maxVersion uint16, err error) {
	for _, name := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, ok := protocolVersions[strings.ToUpper(name)]
		if !ok {
			switch strings.ToUpper(name) {
			case "TLSV1", "TLSV1.0", "TLSV1.1", "SSLV3":
				return 0, 0, fmt.Errorf("%s is deprecated and not supported; use TLSv1.2 or TLSv1.3", name)
			}
			return 0, 0, fmt.Errorf("unknown protocol %q (TLSv1.2 or TLSv1.3)", name)
		}
		if minVersion == 0 || v < minVersion {
			minVersion = v
		}
		maxVersion = max(maxVersion, v)
	}
	return minVersion, maxVersion, nil
}

// ParseCipherSuites reads IANA cipher suite names (the names Java uses
// too, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) into the TLS 1.2 suites
// to offer. TLS 1.3 suites are accepted and have no effect (Go always
// enables them); suites Go considers insecure are refused. No names: nil,
// Go's defaults.
func ParseCipherSuites(names []string) ([]uint16, error) {
	var out []uint16
	for _, name := range names {
		name = strings.TrimSpace(name)
		if i := slices.IndexFunc(tls.InsecureCipherSuites(), func(c *tls.CipherSuite) bool { return c.Name == name }); i >= 0 {
			return nil, fmt.Errorf("cipher suite %s is insecure and not supported", name)
		}
		i := slices.IndexFunc(tls.CipherSuites(), func(c *tls.CipherSuite) bool { return c.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown cipher suite %q", name)
		}
		cs := tls.CipherSuites()[i]
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			continue // a TLS 1.3 suite: always on
		}
		// HTTP/2 (gRPC) forbids the CBC suites (RFC 7540 appendix A): a
		// client negotiating one would be refused after the handshake.
		if !strings.Contains(cs.Name, "_GCM_") && !strings.Contains(cs.Name, "CHACHA20") {
			return nil, fmt.Errorf("cipher suite %s is not allowed with HTTP/2 (RFC 7540 appendix A); use an ECDHE suite with AES-GCM or ChaCha20-Poly1305", name)
		}
		out = append(out, cs.ID)
	}
	if len(names) > 0 && len(out) == 0 {
		// Only TLS 1.3 names: keep Go's TLS 1.2 defaults rather than none.
		return nil, nil
	}
	return out, nil
}
