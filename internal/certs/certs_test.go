package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kubesvc/kubesvc/internal/certs"
	"github.com/kubesvc/kubesvc/internal/certs/certstest"
)

// replace writes data to path through a rename, as Kubernetes and
// cert-manager rotate files.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// handshake serves one TLS connection with server and dials it with
// client; it returns the serial numbers each side saw of the other (nil
// when none) and the client's and server's handshake errors.
func handshake(t *testing.T, server, client *tls.Config) (serverSerial, clientSerial string, clientErr, serverErr error) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := lis.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if serverErr = tc.Handshake(); serverErr != nil {
			return
		}
		if p := tc.ConnectionState().PeerCertificates; len(p) > 0 {
			clientSerial = p[0].SerialNumber.String()
		}
		// Wait for the client to close.
		_, _ = c.Read(make([]byte, 1))
	}()
	// In TLS 1.3 the server's verdict on the client's certificate comes
	// after the client's handshake returned: serverErr reports it.
	c, err := tls.Dial("tcp", lis.Addr().String(), client)
	if err == nil {
		if p := c.ConnectionState().PeerCertificates; len(p) > 0 {
			serverSerial = p[0].SerialNumber.String()
		}
		c.Close()
	}
	wg.Wait()
	return serverSerial, clientSerial, err, serverErr
}

type fixture struct {
	dir                   string
	ca, otherCA           *certstest.CA
	caFile, otherCAFile   string
	serverCert, serverKey string
	server                *certstest.Leaf
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), ca: certstest.NewCA(t, "kubesvc test CA"), otherCA: certstest.NewCA(t, "other CA")}
	f.caFile = certstest.Write(t, f.dir, "ca.pem", f.ca.PEM)
	f.otherCAFile = certstest.Write(t, f.dir, "other-ca.pem", f.otherCA.PEM)
	f.server = f.ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	f.serverCert = certstest.Write(t, f.dir, "server.pem", f.server.CertPEM)
	f.serverKey = certstest.Write(t, f.dir, "server.key", f.server.KeyPEM)
	return f
}

func (f *fixture) clientFiles(t *testing.T, ca *certstest.CA, name string) (certFile, keyFile string, leaf *certstest.Leaf) {
	leaf = ca.Issue(t, pkix.Name{CommonName: name, Organization: []string{"Armory"}})
	return certstest.Write(t, f.dir, name+".pem", leaf.CertPEM), certstest.Write(t, f.dir, name+".key", leaf.KeyPEM), leaf
}

func TestClientAuthPolicies(t *testing.T) {
	f := newFixture(t)
	trusted, trustedKey, trustedLeaf := f.clientFiles(t, f.ca, "agent-1")
	stranger, strangerKey, _ := f.clientFiles(t, f.otherCA, "stranger")
	client := func(cert, key string) *tls.Config {
		c, err := certs.NewClient(certs.ClientOptions{CACertFile: "file:" + f.caFile, Host: "127.0.0.1", ClientCertFile: cert, ClientKeyFile: key})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := func(auth tls.ClientAuthType) *tls.Config {
		s, err := certs.NewServer(certs.ServerOptions{CertificateChain: "file://" + f.serverCert, PrivateKey: f.serverKey,
			ClientAuth: auth, TrustCertCollection: "file:" + f.caFile})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := certs.NewServer(certs.ServerOptions{CertificateChain: f.serverCert, PrivateKey: f.serverKey,
		ClientAuth: tls.RequireAndVerifyClientCert}); err == nil || !strings.Contains(err.Error(), "trust bundle") {
		t.Errorf("client certificates without a trust bundle: error %v, want refused", err)
	}
	for _, tc := range []struct {
		name      string
		auth      tls.ClientAuthType
		cert, key string
		wantOK    bool
		wantPeer  string
	}{
		{"require, trusted certificate", tls.RequireAndVerifyClientCert, trusted, trustedKey, true, trustedLeaf.Cert.SerialNumber.String()},
		{"require, no certificate", tls.RequireAndVerifyClientCert, "", "", false, ""},
		{"require, certificate of another CA", tls.RequireAndVerifyClientCert, stranger, strangerKey, false, ""},
		{"optional, no certificate", tls.VerifyClientCertIfGiven, "", "", true, ""},
		{"optional, trusted certificate", tls.VerifyClientCertIfGiven, trusted, trustedKey, true, trustedLeaf.Cert.SerialNumber.String()},
		{"optional, certificate of another CA", tls.VerifyClientCertIfGiven, stranger, strangerKey, false, ""},
		{"none, certificate not asked for", tls.NoClientCert, trusted, trustedKey, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverSerial, clientSerial, cerr, serr := handshake(t, server(tc.auth), client(tc.cert, tc.key))
			if ok := cerr == nil && serr == nil; ok != tc.wantOK {
				t.Fatalf("handshake ok = %v, want %v (client: %v, server: %v)", ok, tc.wantOK, cerr, serr)
			}
			if !tc.wantOK {
				return
			}
			if serverSerial != f.server.Cert.SerialNumber.String() {
				t.Errorf("client saw server certificate %s, want %s", serverSerial, f.server.Cert.SerialNumber)
			}
			if clientSerial != tc.wantPeer {
				t.Errorf("server saw client certificate %q, want %q", clientSerial, tc.wantPeer)
			}
		})
	}
}

func TestClientVerifiesServer(t *testing.T) {
	f := newFixture(t)
	server, err := certs.NewServer(certs.ServerOptions{CertificateChain: f.serverCert, PrivateKey: f.serverKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   certs.ClientOptions
		wantOK bool
	}{
		{"trusted CA", certs.ClientOptions{CACertFile: f.caFile, Host: "127.0.0.1"}, true},
		{"trusted CA, the certificate's name", certs.ClientOptions{CACertFile: f.caFile, Host: "127.0.0.1", ServerName: "localhost"}, true},
		{"trusted CA, a name with a port", certs.ClientOptions{CACertFile: f.caFile, ServerName: "localhost:9091"}, true},
		{"another CA", certs.ClientOptions{CACertFile: f.otherCAFile, Host: "127.0.0.1"}, false},
		{"another CA, verification skipped", certs.ClientOptions{CACertFile: f.otherCAFile, InsecureSkipVerify: true}, true},
		{"name not in the certificate", certs.ClientOptions{CACertFile: f.caFile, Host: "127.0.0.1", ServerName: "controlplane.example"}, false},
		{"address not in the certificate", certs.ClientOptions{CACertFile: f.caFile, Host: "127.0.0.2"}, false},
		{"trusted CA, no name given: Go checks the dialled address", certs.ClientOptions{CACertFile: f.caFile}, true},
		{"system roots", certs.ClientOptions{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := certs.NewClient(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, _, cerr, _ := handshake(t, server, c)
			if (cerr == nil) != tc.wantOK {
				t.Fatalf("client handshake error %v, want ok = %v", cerr, tc.wantOK)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	clientCert, clientKey, clientLeaf := f.clientFiles(t, f.ca, "agent-1")
	var mu sync.Mutex
	var reloadErrs []error
	onErr := func(err error) { mu.Lock(); defer mu.Unlock(); reloadErrs = append(reloadErrs, err) }
	server, err := certs.NewServer(certs.ServerOptions{CertificateChain: f.serverCert, PrivateKey: f.serverKey,
		ClientAuth: tls.RequireAndVerifyClientCert, TrustCertCollection: f.caFile, OnReloadError: onErr})
	if err != nil {
		t.Fatal(err)
	}
	// The client trusts a bundle of its own, rotated below.
	clientCAFile := certstest.Write(t, f.dir, "client-ca.pem", f.ca.PEM)
	client, err := certs.NewClient(certs.ClientOptions{CACertFile: clientCAFile, Host: "127.0.0.1", ClientCertFile: clientCert, ClientKeyFile: clientKey, OnReloadError: onErr})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, wantServer, wantClient *x509.Certificate) {
		t.Helper()
		s, c, cerr, serr := handshake(t, server, client)
		if cerr != nil || serr != nil {
			t.Fatalf("%s: handshake: client %v, server %v", step, cerr, serr)
		}
		if s != wantServer.SerialNumber.String() || c != wantClient.SerialNumber.String() {
			t.Fatalf("%s: saw server %s and client %s, want %s and %s", step, s, c, wantServer.SerialNumber, wantClient.SerialNumber)
		}
	}
	check("before rotation", f.server.Cert, clientLeaf.Cert)

	// Both sides rotate their certificates; the next handshake uses them.
	newServer := f.ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	replace(t, f.serverCert, newServer.CertPEM)
	replace(t, f.serverKey, newServer.KeyPEM)
	newClient := f.ca.Issue(t, pkix.Name{CommonName: "agent-1"})
	replace(t, clientCert, newClient.CertPEM)
	replace(t, clientKey, newClient.KeyPEM)
	check("after rotation", newServer.Cert, newClient.Cert)

	// A rotation caught half done (new certificate, old key) keeps the
	// last good pair and is reported once.
	half := f.ca.Issue(t, pkix.Name{CommonName: "controlplane"})
	replace(t, f.serverCert, half.CertPEM)
	check("half-done rotation, first handshake", newServer.Cert, newClient.Cert)
	check("half-done rotation, second handshake", newServer.Cert, newClient.Cert)
	mu.Lock()
	if len(reloadErrs) != 1 || !strings.Contains(reloadErrs[0].Error(), "does not match") {
		t.Errorf("reload errors %v, want one key mismatch", reloadErrs)
	}
	mu.Unlock()
	replace(t, f.serverKey, half.KeyPEM)
	check("rotation completed", half.Cert, newClient.Cert)

	// The agent's bundle is reloaded too: the control plane moves to a
	// certificate of another CA, the agent refuses it until its bundle
	// has that CA, then takes it, without a new client configuration.
	moved := f.otherCA.Issue(t, pkix.Name{CommonName: "controlplane"})
	replace(t, f.serverCert, moved.CertPEM)
	replace(t, f.serverKey, moved.KeyPEM)
	if _, _, cerr, _ := handshake(t, server, client); cerr == nil {
		t.Fatal("the client took a server certificate of a CA not in its bundle")
	}
	replace(t, clientCAFile, append(append([]byte{}, f.ca.PEM...), f.otherCA.PEM...))
	check("client bundle rotated", moved.Cert, newClient.Cert)

	// The client CA bundle is reloaded too: a bundle without our CA
	// refuses the client.
	replace(t, f.caFile, f.otherCA.PEM)
	if _, _, cerr, serr := handshake(t, server, client); cerr == nil && serr == nil {
		t.Fatal("handshake succeeded after the server's trust bundle dropped the client's CA")
	}
}

func TestKeys(t *testing.T) {
	f := newFixture(t)
	leaf := f.ca.Issue(t, pkix.Name{CommonName: "agent"})
	cert := certstest.Write(t, f.dir, "c.pem", leaf.CertPEM)
	encrypted := certstest.Write(t, f.dir, "enc.key", leaf.EncryptedKeyPEM(t, "s3cret"))
	combined := certstest.Write(t, f.dir, "combined.pem", append(append([]byte{}, leaf.CertPEM...), leaf.KeyPEM...))
	other := certstest.Write(t, f.dir, "other.key", f.server.KeyPEM)
	for _, tc := range []struct {
		name          string
		key, password string
		wantErr       string
		wantErrIs     error
	}{
		{name: "encrypted PKCS#8 with its password", key: encrypted, password: "s3cret"},
		{name: "encrypted PKCS#8 without a password", key: encrypted, wantErrIs: certs.ErrEncryptedKey},
		{name: "encrypted PKCS#8 with a wrong password", key: encrypted, password: "wrong", wantErr: "cannot decrypt"},
		{name: "key in the certificate's file", key: ""},
		{name: "key of another certificate", key: other, wantErr: "does not match"},
		{name: "no key", key: f.caFile, wantErr: "no PEM private key"},
		{name: "missing file", key: filepath.Join(f.dir, "nope.key"), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile := cert
			if tc.key == "" {
				certFile = combined
			}
			_, err := certs.NewClient(certs.ClientOptions{ClientCertFile: certFile, ClientKeyFile: tc.key, ClientKeyPassword: tc.password})
			switch {
			case tc.wantErr == "" && tc.wantErrIs == nil:
				if err != nil {
					t.Fatal(err)
				}
			case err == nil:
				t.Fatal("no error")
			case tc.wantErrIs != nil && !errors.Is(err, tc.wantErrIs):
				t.Fatalf("error %v, want %v", err, tc.wantErrIs)
			case !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Fatalf("error quotes key material: %v", err)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	title := asn1.ObjectIdentifier{2, 5, 4, 12}
	leaf := ca.Issue(t, pkix.Name{
		Country: []string{"US"}, Organization: []string{"Armory, Inc."}, OrganizationalUnit: []string{"agents"},
		CommonName: "agent-1",
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: uid, Value: "abc:123:ksvc"}, {Type: title, Value: "boss"}},
	})
	got := certs.Subject(leaf.Cert)
	// What openssl x509 -noout -subject -nameopt RFC2253 prints for this
	// certificate, but for the title, which RFC 2253 (and Java) leave
	// unnamed: its OID and DER (a PrintableString "boss").
	want := `2.5.4.12=#1304626f7373,UID=abc:123:ksvc,CN=agent-1,OU=agents,O=Armory\, Inc.,C=US`
	if got != want {
		t.Fatalf("Subject = %q, want %q", got, want)
	}
	filter, err := certs.NewFilter([]string{`UID=([a-z]){3}:[1-9]{3}:ksvc`})
	if err != nil {
		t.Fatal(err)
	}
	if !filter.Allows(got) {
		t.Error("the documented example filter does not match")
	}
	for _, tc := range []struct {
		filters []string
		want    bool
	}{
		{[]string{`CN=agent-2`}, false},
		{[]string{`CN=agent-2`, `OU=agents`}, true},
		{[]string{`^CN=agent-1`}, false}, // anchored: the line starts with the title
		{[]string{`CN=agent-\d+,`}, true},
	} {
		f, err := certs.NewFilter(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if f.Allows(got) != tc.want {
			t.Errorf("filters %q allow %q = %v, want %v", tc.filters, got, !tc.want, tc.want)
		}
	}
	var none *certs.Filter
	if none.Allows(got) {
		t.Error("a nil filter allows a subject")
	}
	if _, err := certs.NewFilter([]string{"ok", "(unclosed"}); err == nil || !strings.Contains(err.Error(), "filter 1") {
		t.Errorf("bad expression: error %v, want one naming filter 1", err)
	}
}

func TestParseProtocolsAndCiphers(t *testing.T) {
	for _, tc := range []struct {
		in       string
		min, max uint16
		wantErr  string
	}{
		{"", 0, 0, ""},
		{"TLSv1.2", tls.VersionTLS12, tls.VersionTLS12, ""},
		{"TLSv1.3, TLSv1.2", tls.VersionTLS12, tls.VersionTLS13, ""},
		{"TLSv1.1,TLSv1.2", 0, 0, "deprecated"},
		{"TLSv9", 0, 0, "unknown protocol"},
	} {
		lo, hi, err := certs.ParseProtocols(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseProtocols(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || lo != tc.min || hi != tc.max {
			t.Errorf("ParseProtocols(%q) = %x, %x, %v; want %x, %x", tc.in, lo, hi, err, tc.min, tc.max)
		}
	}
	ids, err := certs.ParseCipherSuites([]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"})
	if err != nil || len(ids) != 1 || ids[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("ParseCipherSuites = %v, %v; want the one TLS 1.2 suite", ids, err)
	}
	if _, err := certs.ParseCipherSuites([]string{"TLS_RSA_WITH_RC4_128_SHA"}); err == nil || !strings.Contains(err.Error(), "insecure") {
		t.Errorf("RC4: error %v, want insecure", err)
	}
	if _, err := certs.ParseCipherSuites([]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}); err == nil || !strings.Contains(err.Error(), "HTTP/2") {
		t.Errorf("CBC suite: error %v, want refused for HTTP/2", err)
	}
	if _, err := certs.ParseCipherSuites([]string{"TLS_NOPE"}); err == nil || !strings.Contains(err.Error(), "unknown cipher suite") {
		t.Errorf("unknown suite: error %v", err)
	}
	// A restricted suite list is what the server offers.
	f := newFixture(t)
	server, err := certs.NewServer(certs.ServerOptions{CertificateChain: f.serverCert, PrivateKey: f.serverKey,
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}})
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{RootCAs: x509.NewCertPool(), CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	client.RootCAs.AddCert(f.ca.Cert)
	if _, _, cerr, _ := handshake(t, server, client); cerr == nil {
		t.Error("a client offering only a suite the server does not allow connected")
	}
}

func TestPath(t *testing.T) {
	for in, want := range map[string]string{
		"file:/etc/x.pem": "/etc/x.pem", "file:///etc/x.pem": "/etc/x.pem", "/etc/x.pem": "/etc/x.pem",
		"file:rel/x.pem": "rel/x.pem", " file:/a ": "/a",
	} {
		if got := certs.Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
}
