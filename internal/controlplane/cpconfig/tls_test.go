package cpconfig

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/certs/certstest"
)

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	leaf := ca.Issue(t, pkix.Name{CommonName: "cp"})
	other := ca.Issue(t, pkix.Name{CommonName: "other"})
	cert := certstest.Write(t, dir, "tls.crt", leaf.CertPEM)
	key := certstest.Write(t, dir, "tls.key", leaf.KeyPEM)
	enc := certstest.Write(t, dir, "enc.key", leaf.EncryptedKeyPEM(t, "pw"))
	otherKey := certstest.Write(t, dir, "other.key", other.KeyPEM)
	caFile := certstest.Write(t, dir, "ca.crt", ca.PEM)
	conf := func(extra string) string {
		return "kubesvc:\n  grpc:\n    server:\n      security: {enabled: true, certificateChain: 'file:" + cert + "'" + extra + "}\n"
	}

	c := mustLoad(t, "kubesvc: {grpc: {server: {port: 9091}}}\n")
	if cfg, f, err := c.ServerTLS(nil); cfg != nil || f != nil || err != nil {
		t.Errorf("security disabled: ServerTLS = %v, %v, %v; want plaintext", cfg, f, err)
	}

	c = mustLoad(t, conf(", privateKey: 'file://"+enc+"', privateKeyPassword: pw, clientAuth: optional, trustCertCollection: "+caFile+", protocols: TLSv1.3")+
		"    auth: {x509: {enabled: true, filters: ['CN=agent']}}\n")
	cfg, f, err := c.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.MinVersion != tls.VersionTLS13 || len(cfg.Certificates) != 1 || f == nil || !f.Allows("CN=agent-1") || f.Allows("CN=other") {
		t.Errorf("config: clientAuth %v, min version %x, %d certificates, filter %v", cfg.ClientAuth, cfg.MinVersion, len(cfg.Certificates), f)
	}

	for _, tc := range []struct{ extra, want string }{
		{", privateKey: " + filepath.Join(dir, "missing.key"), "missing.key: no such file"},
		{", privateKey: " + otherKey, "does not match the certificate"},
		{", privateKey: " + enc, "encrypted and no password"},
		{", privateKey: " + key + ", clientAuth: REQUIRE, trustCertCollection: " + key, "no PEM certificate"},
	} {
		c := mustLoad(t, conf(tc.extra))
		_, _, err := c.ServerTLS(nil)
		if err == nil || !strings.HasPrefix(err.Error(), "kubesvc.grpc.server.security: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want kubesvc.grpc.server.security: ... %s", tc.extra, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("error quotes key material: %v", err)
		}
	}
}

func TestDSNFile(t *testing.T) {
	dir := t.TempDir()
	dsn := writeFile(t, dir, "dsn", "user:secret@tcp(db:3306)/kubesvc\n")
	c := mustLoad(t, "sql: {driver: mysql, dsnFile: "+dsn+"}\n")
	if c.SQL.DSN != "user:secret@tcp(db:3306)/kubesvc" {
		t.Errorf("DSN = %q, want the file's content, trimmed", c.SQL.DSN)
	}
	empty := writeFile(t, dir, "empty", "\n")
	for y, want := range map[string]string{
		"sql: {driver: mysql, dsn: x, dsnFile: " + dsn + "}\n": "sql.dsnFile: set either sql.dsn or sql.dsnFile, not both",
		"sql: {driver: mysql, dsnFile: " + dir + "/missing}\n": "sql.dsnFile: open " + dir + "/missing: no such file or directory",
		"sql: {driver: postgres, dsnFile: " + empty + "}\n":    "sql.dsnFile: " + empty + " is empty",
	} {
		_, p, err := loadString(t, y)
		if err == nil || !strings.Contains(err.Error(), "config "+p+": "+want) {
			t.Errorf("%s: err = %v, want %q", y, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret@") {
			t.Errorf("the error quotes the DSN: %v", err)
		}
	}
}
