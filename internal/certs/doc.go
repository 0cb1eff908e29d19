// Package certs builds the TLS configurations of the gRPC connection
// between agents and the control plane from PEM files, and keeps them
// current as the files are rotated.
//
// Both ends name their certificates, keys and trust bundles by path, in
// the documented form (file:/path, file:///path, or a bare path). The
// files are read when the configuration is built, so that a missing file
// or a key that does not match its certificate is an error at start-up,
// and read again on a later handshake after their modification time or
// size changed: cert-manager, or a Kubernetes Secret volume swapping its
// ..data link, can rotate them without a restart. A rotation caught half
// done (a new certificate beside an old key) keeps the last good pair in
// use and is reported through the OnReloadError callback; the files are
// read again once they change again.
//
// Keys are PEM: PKCS#8 (encrypted with a password when one is given, as
// openssl pkcs8 -topk8 -v2 writes them), PKCS#1 RSA or SEC 1 EC.
//
// NewServer gives the control plane's config: its certificate chain, the
// client-certificate policy (NONE, OPTIONAL, REQUIRE) against a trust
// bundle, TLS versions and cipher suites.
// NewClient gives the agent's: the trust bundle for the control plane's
// certificate and an optional client certificate for mTLS.
//
// Subject and Filter implement x509 subject filtering: a verified client
// certificate is authorized when its subject line, written in RFC 2253 form
// (UID=abc:123:ksvc,CN=agent-1,O=Example; RFC 2253's keywords, other
// attributes as OID=#hex of their DER), contains a match of any of the
// regular expressions.
//
// The trust bundle for client certificates must be named: verifying them
// against the system's roots would accept any public certificate.
//
// Package certstest writes certificate authorities, certificates and keys
// for tests; it is used by tests only.
package certs
