package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
)

// Path turns a file reference as the documentation writes it (file:/path,
// file:///path) into a path; a bare path is returned as is.
func Path(ref string) string {
	ref = strings.TrimSpace(ref)
	if rest, ok := strings.CutPrefix(ref, "file:"); ok {
		if strings.HasPrefix(rest, "///") {
			return rest[2:]
		}
		return rest
	}
	return ref
}

// ErrEncryptedKey: the key is encrypted and no password was given.
var ErrEncryptedKey = errors.New("the private key is encrypted and no password is configured")

// loadKeyPair reads a certificate chain and its private key. keyFile may
// be the certificate file itself (both PEM blocks in one file).
func loadKeyPair(certFile, keyFile, password string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate chain: %w", err)
	}
	keyPEM := certPEM
	if keyFile != certFile {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return nil, fmt.Errorf("read private key: %w", err)
		}
	}
	var cert tls.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			cert.Certificate = append(cert.Certificate, b.Bytes)
		}
	}
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("certificate chain %s: no PEM CERTIFICATE block", certFile)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certificate chain %s: %w", certFile, err)
	}
	key, err := parseKey(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", keyFile, err)
	}
	if !publicKeyMatches(leaf.PublicKey, key) {
		return nil, fmt.Errorf("private key %s does not match the certificate in %s", keyFile, certFile)
	}
	cert.PrivateKey, cert.Leaf = key, leaf
	return &cert, nil
}

// parseKey finds the first private key block in data. Errors never quote
// the key material.
func parseKey(data []byte, password string) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM private key block (PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if password == "" {
				return nil, ErrEncryptedKey
			}
			key, err = pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(password))
			if err != nil {
				// The library's message for a wrong password is an
				// ASN.1 or padding error; say what it most likely is.
				return nil, fmt.Errorf("cannot decrypt the PKCS#8 key (wrong password, or an unsupported cipher): %w", err)
			}
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, encrypted := b.Headers["Proc-Type"]; encrypted {
				return nil, errors.New("legacy PEM encryption (Proc-Type: 4,ENCRYPTED) is not supported; convert the key with openssl pkcs8 -topk8 -v2 aes-256-cbc")
			}
			if b.Type == "RSA PRIVATE KEY" {
				key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			} else {
				key, err = x509.ParseECPrivateKey(b.Bytes)
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return s, nil
	}
}

func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		e, ok := pub.(equaler)
		return ok && e.Equal(key.Public())
	}
	return false
}

// loadPool reads a PEM bundle of certificate authorities.
func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("trust bundle %s: no PEM certificate", file)
	}
	return pool, nil
}
