package credentials

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of an encryption key: AES-256.
const KeySize = 32

const (
	sealedPrefix = "sealed:"
	sealedV1     = "v1"
	keyIDLen     = 8 // hex digits
)

var (
	// ErrNoKey is returned by Seal when no encryption key is configured.
	// Callers refuse to store inline kubeconfig contents on it.
	ErrNoKey = errors.New("no encryption key configured: inline kubeconfig contents would be stored in plain text; " +
		"configure kubesvc.dynamicAccounts.encryptionKey or kubesvc.dynamicAccounts.encryptionKeyFile, " +
		"or refer to the kubeconfig with kubeconfigFile (a Secret reference such as encryptedFile:k8s!n:NAME!k:KEY!ns:NAMESPACE, or a path)")
	// ErrTampered is wrapped by Open when a sealed value fails
	// authentication: it was changed after sealing, or truncated.
	ErrTampered = errors.New("sealed value failed authentication (corrupted or tampered with)")
	// ErrNotSealed is wrapped by Open when its input is not a sealed value
	// or is malformed.
	ErrNotSealed = errors.New("not a sealed value")
)

// KeyMismatchError is returned by Open when no configured key has the id a
// value was sealed with.
type KeyMismatchError struct {
	// SealedWith is the id of the key the value was sealed with.
	SealedWith string
	// Configured are the ids of the configured keys, the sealing key first.
	Configured []string
}

func (e *KeyMismatchError) Error() string {
	const same = "; the key (kubesvc.dynamicAccounts.encryptionKey or encryptionKeyFile) must be the same on every control-plane replica"
	switch len(e.Configured) {
	case 0:
		return fmt.Sprintf("sealed with key %s, and no key is configured here%s", e.SealedWith, same)
	case 1:
		return fmt.Sprintf("sealed with key %s, not the one configured here (%s)%s", e.SealedWith, e.Configured[0], same)
	default:
		return fmt.Sprintf("sealed with key %s, none of those configured here (%s)%s", e.SealedWith, strings.Join(e.Configured, ", "), same)
	}
}

// Sealer encrypts credential contents at rest with AES-256-GCM. The first
// key seals; every key opens, so a key can be rotated by configuring the
// new key first and the old one after it until every value is resealed
// (Reseal). A nil *Sealer, or one without keys, opens nothing and seals
// nothing (ErrNoKey). A Sealer is safe for concurrent use.
type Sealer struct {
	keys []sealKey
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// NewSealer returns a Sealer for keys of KeySize bytes each, the first of
// which seals. Duplicate keys are ignored. Without keys the Sealer is valid
// and its Seal returns ErrNoKey.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	seen := map[string][]byte{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("encryption key %d: %d bytes, want %d", i+1, len(k), KeySize)
		}
		id := KeyID(k)
		if have, dup := seen[id]; dup {
			if subtle.ConstantTimeCompare(have, k) != 1 {
				return nil, fmt.Errorf("encryption key %d: two different keys have the id %s; generate another key", i+1, id)
			}
			continue
		}
		seen[id] = k
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		s.keys = append(s.keys, sealKey{id: id, aead: aead})
	}
	return s, nil
}

// KeyConfig is how keys are configured: the sealing key inline or in a
// file (kubesvc.dynamicAccounts.encryptionKey, ...encryptionKeyFile), and
// older keys that still open values sealed before a rotation.
type KeyConfig struct {
	Key              string
	KeyFile          string
	PreviousKeys     []string
	PreviousKeyFiles []string
}

// NewSealerFromConfig parses and reads the configured keys (see ParseKey
// and ReadKeyFile) and returns a Sealer sealing with Key or KeyFile. Setting
// neither is allowed (Seal then returns ErrNoKey) unless previous keys are
// given; setting both is an error.
func NewSealerFromConfig(c KeyConfig) (*Sealer, error) {
	var keys [][]byte
	switch {
	case c.Key != "" && c.KeyFile != "":
		return nil, errors.New("encryptionKey and encryptionKeyFile are both set; set one of them")
	case c.Key != "":
		k, err := ParseKey(c.Key)
		if err != nil {
			return nil, fmt.Errorf("encryptionKey: %w", err)
		}
		keys = append(keys, k)
	case c.KeyFile != "":
		k, err := ReadKeyFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("encryptionKeyFile: %w", err)
		}
		keys = append(keys, k)
	case len(c.PreviousKeys) > 0 || len(c.PreviousKeyFiles) > 0:
		return nil, errors.New("previous encryption keys are configured but no current one (encryptionKey or encryptionKeyFile)")
	}
	for i, p := range c.PreviousKeys {
		k, err := ParseKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous encryption key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	for _, p := range c.PreviousKeyFiles {
		k, err := ReadKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("previous encryption key file: %w", err)
		}
		keys = append(keys, k)
	}
	return NewSealer(keys...)
}

// ParseKey decodes a configured key: KeySize raw bytes, their base64
// (standard or URL alphabet, padded or not) or their hex. Errors never
// include the key.
func ParseKey(s string) ([]byte, error) {
	if len(s) == KeySize {
		return []byte(s), nil
	}
	t := strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(t); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	if k, err := hex.DecodeString(t); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("a key of %d bytes is neither %d raw bytes nor their base64 (44 characters) or hex (64); "+
		"generate one with: openssl rand -base64 32", len(s), KeySize)
}

// ReadKeyFile reads a key file holding KeySize raw bytes, or their base64
// or hex with surrounding whitespace (as openssl rand -base64 32 writes).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == KeySize {
		return b, nil
	}
	if len(b) > 1024 {
		return nil, fmt.Errorf("key file %s: %d bytes is too large for a key", Redact(path), len(b))
	}
	k, err := ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", Redact(path), err)
	}
	return k, nil
}

// KeyID returns the id of a key as it appears in sealed values: the first
// 8 hex digits of a SHA-256 over a fixed label and the key. It identifies a
// key without revealing it.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("kubesvc sealer key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:keyIDLen]
}

// KeyIDs returns the ids of the configured keys, the sealing key first.
func (s *Sealer) KeyIDs() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.id
	}
	return ids
}

// CanSeal reports whether a key is configured.
func (s *Sealer) CanSeal() bool { return s != nil && len(s.keys) > 0 }

// IsSealed reports whether s has the prefix of a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// Seal encrypts plaintext with the first key and returns
// sealed:v1:KEYID:BASE64(nonce|ciphertext). The header is authenticated
// too, so changing any part of the result makes Open fail. Without a key it
// returns ErrNoKey.
func (s *Sealer) Seal(plaintext []byte) (string, error) {
	if !s.CanSeal() {
		return "", ErrNoKey
	}
	k := s.keys[0]
	header := sealedPrefix + sealedV1 + ":" + k.id + ":"
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plaintext, []byte(header))
	return header + base64.StdEncoding.EncodeToString(out), nil
}

// splitSealed splits a sealed value into its header (through the colon
// after the key id) and payload, checking the version and key id syntax.
func splitSealed(sealed string) (header, payload string, err error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: no %q prefix", ErrNotSealed, sealedPrefix)
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return "", "", fmt.Errorf("%w: expected sealed:v1:KEYID:DATA", ErrNotSealed)
	}
	if parts[0] != sealedV1 {
		return "", "", fmt.Errorf("%w: unsupported version %s (this build reads %s)", ErrNotSealed, Redact(parts[0]), sealedV1)
	}
	if len(parts[1]) != keyIDLen || strings.Trim(parts[1], "0123456789abcdef") != "" {
		return "", "", fmt.Errorf("%w: malformed key id", ErrNotSealed)
	}
	return sealed[:len(sealed)-len(parts[2])], parts[2], nil
}

// SealedKeyID returns the id of the key a sealed value was sealed with.
func SealedKeyID(sealed string) (string, error) {
	h, _, err := splitSealed(sealed)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(h[len(sealedPrefix+sealedV1+":"):], ":"), nil
}

// Open decrypts a value returned by Seal with the configured key it was
// sealed with. A value sealed with a key not configured gives a
// *KeyMismatchError; a changed value gives an error wrapping ErrTampered.
func (s *Sealer) Open(sealed string) ([]byte, error) {
	header, payload, err := splitSealed(sealed)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSuffix(header[len(sealedPrefix+sealedV1+":"):], ":")
	var key *sealKey
	if s != nil {
		for i := range s.keys {
			if s.keys[i].id == id {
				key = &s.keys[i]
				break
			}
		}
	}
	if key == nil {
		return nil, &KeyMismatchError{SealedWith: id, Configured: s.KeyIDs()}
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("sealed with key %s: %w: payload is not base64", id, ErrTampered)
	}
	ns := key.aead.NonceSize()
	if len(data) < ns+key.aead.Overhead() {
		return nil, fmt.Errorf("sealed with key %s: %w: payload too short", id, ErrTampered)
	}
	plain, err := key.aead.Open(nil, data[:ns], data[ns:], []byte(header))
	if err != nil {
		return nil, fmt.Errorf("sealed with key %s: %w", id, ErrTampered)
	}
	return plain, nil
}

// Reseal re-encrypts a value sealed with an older key with the sealing
// key; changed is false when it already was sealed with it.
func (s *Sealer) Reseal(sealed string) (out string, changed bool, err error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return "", false, err
	}
	if s.CanSeal() && id == s.keys[0].id {
		return sealed, false, nil
	}
	plain, err := s.Open(sealed)
	if err != nil {
		return "", false, err
	}
	out, err = s.Seal(plain)
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// SealSource returns src as it may be stored: inline kubeconfigContents
// sealed (ErrNoKey, wrapped in an *Error naming the field, when no key is
// configured), secret references, paths, already sealed values and
// serviceAccount unchanged. A path or reference field holding kubeconfig
// contents is refused, so that it is never stored in plain text.
func (s *Sealer) SealSource(src Source) (Source, error) {
	if err := CheckPathFields(src); err != nil {
		return Source{}, err
	}
	c := src.KubeconfigContents
	if strings.TrimSpace(c) == "" || IsRef(strings.TrimSpace(c)) || IsSealed(c) {
		return src, nil
	}
	sealed, err := s.Seal([]byte(c))
	if err != nil {
		return Source{}, &Error{Field: FieldKubeconfigContents, Origin: inlineOrigin(c), Err: err}
	}
	src.KubeconfigContents = sealed
	return src, nil
}

// CheckPathFields refuses kubeconfig contents in the fields that hold a
// path or a reference, kubeconfigFile and kubeconfigAgent (see
// LooksLikeContent), whichever of them are set, so that contents never
// reach a place that stores them as they are. The error is an *Error
// naming the field and the value's size, never its content.
func CheckPathFields(src Source) error {
	for _, f := range []struct{ name, v string }{{FieldKubeconfigFile, src.KubeconfigFile}, {FieldKubeconfigAgent, src.KubeconfigAgent}} {
		if LooksLikeContent(f.v) {
			return &Error{Field: f.name, Origin: inlineOrigin(f.v), Err: errContentInPathField(f.name)}
		}
	}
	return nil
}
