package credentials

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealer(t *testing.T, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	key := newKey(t)
	s := mustSealer(t, key)
	for _, plain := range [][]byte{[]byte(testKubeconfig("t0ken")), {}, {0, 1, 2, 255}} {
		sealed, err := s.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		wantPrefix := "sealed:v1:" + KeyID(key) + ":"
		if !strings.HasPrefix(sealed, wantPrefix) || !IsSealed(sealed) {
			t.Fatalf("sealed = %q, want prefix %q", sealed, wantPrefix)
		}
		if len(plain) > 0 && strings.Contains(sealed, string(plain)) {
			t.Fatal("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
		if id, err := SealedKeyID(sealed); err != nil || id != KeyID(key) {
			t.Fatalf("SealedKeyID = %q, %v", id, err)
		}
	}
	a, _ := s.Seal([]byte("same"))
	b, _ := s.Seal([]byte("same"))
	if a == b {
		t.Error("two seals of the same plaintext are equal: nonce reused")
	}
	if len(KeyID(key)) != 8 || KeyID(key) == KeyID(newKey(t)) {
		t.Errorf("KeyID = %q", KeyID(key))
	}
}

func TestSealerTamper(t *testing.T) {
	k1 := newKey(t)
	s := mustSealer(t, k1)
	sealed, err := s.Seal([]byte(testKubeconfig("t0ken")))
	if err != nil {
		t.Fatal(err)
	}
	header, payload, _ := strings.Cut(sealed[len("sealed:v1:"):], ":")
	header = "sealed:v1:" + header + ":"
	raw, _ := base64.StdEncoding.DecodeString(payload)

	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return header + base64.StdEncoding.EncodeToString(b)
	}
	for name, v := range map[string]string{
		"nonce":      flip(0),
		"ciphertext": flip(20),
		"tag":        flip(len(raw) - 1),
		"truncated":  header + base64.StdEncoding.EncodeToString(raw[:len(raw)-1]),
		"too short":  header + base64.StdEncoding.EncodeToString(raw[:10]),
		"not base64": header + "!!!" + payload,
		"appended":   header + base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
	} {
		_, err := s.Open(v)
		if !errors.Is(err, ErrTampered) {
			t.Errorf("%s: Open error %v, want ErrTampered", name, err)
		}
	}
	for name, v := range map[string]string{
		"no prefix":       strings.TrimPrefix(sealed, "sealed:"),
		"version":         strings.Replace(sealed, ":v1:", ":v2:", 1),
		"missing parts":   "sealed:v1:abc",
		"key id syntax":   "sealed:v1:XYZ:" + payload,
		"key id too long": "sealed:v1:0123456789:" + payload,
	} {
		_, err := s.Open(v)
		if !errors.Is(err, ErrNotSealed) {
			t.Errorf("%s: Open error %v, want ErrNotSealed", name, err)
		}
	}
	// The key id is authenticated: a value relabelled with another
	// configured key's id does not open with that key either.
	k2 := newKey(t)
	both := mustSealer(t, k1, k2)
	relabelled := "sealed:v1:" + KeyID(k2) + ":" + payload
	if _, err := both.Open(relabelled); !errors.Is(err, ErrTampered) {
		t.Errorf("relabelled: %v, want ErrTampered", err)
	}
}

func TestSealerWrongKey(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	sealed, err := mustSealer(t, k1).Seal([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustSealer(t, k2).Open(sealed)
	const same = "; the key (kubesvc.dynamicAccounts.encryptionKey or encryptionKeyFile) must be the same on every control-plane replica"
	want := "sealed with key " + KeyID(k1) + ", not the one configured here (" + KeyID(k2) + ")" + same
	var km *KeyMismatchError
	if !errors.As(err, &km) || err.Error() != want {
		t.Fatalf("Open with another key: %v, want %q", err, want)
	}
	_, err = mustSealer(t, k2, k3).Open(sealed)
	if want := "sealed with key " + KeyID(k1) + ", none of those configured here (" + KeyID(k2) + ", " + KeyID(k3) + ")" + same; err == nil || err.Error() != want {
		t.Fatalf("Open with two other keys: %v, want %q", err, want)
	}
	var none *Sealer
	if _, err := none.Open(sealed); !errors.As(err, &km) || !strings.Contains(err.Error(), "no key is configured here") {
		t.Fatalf("Open without keys: %v", err)
	}
}

func TestSealerRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	old := mustSealer(t, oldKey)
	sealedOld, _ := old.Seal([]byte("before rotation"))

	rotated := mustSealer(t, newK, oldKey)
	if got, err := rotated.Open(sealedOld); err != nil || string(got) != "before rotation" {
		t.Fatalf("Open old value after rotation: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal([]byte("after rotation"))
	if id, _ := SealedKeyID(sealedNew); id != KeyID(newK) {
		t.Fatalf("sealed with %s, want the first key %s", id, KeyID(newK))
	}
	if _, err := old.Open(sealedNew); err == nil {
		t.Fatal("the old key alone opened a value sealed with the new key")
	}

	resealed, changed, err := rotated.Reseal(sealedOld)
	if err != nil || !changed {
		t.Fatalf("Reseal: %v, changed %v", err, changed)
	}
	if got, err := mustSealer(t, newK).Open(resealed); err != nil || string(got) != "before rotation" {
		t.Fatalf("Open resealed with the new key alone: %q, %v", got, err)
	}
	if same, changed, err := rotated.Reseal(sealedNew); err != nil || changed || same != sealedNew {
		t.Fatalf("Reseal of a current value: changed %v, %v", changed, err)
	}
	if ids := rotated.KeyIDs(); len(ids) != 2 || ids[0] != KeyID(newK) || ids[1] != KeyID(oldKey) {
		t.Fatalf("KeyIDs = %v", ids)
	}
	if dup := mustSealer(t, newK, newK, oldKey); len(dup.KeyIDs()) != 2 {
		t.Fatalf("duplicate key kept: %v", dup.KeyIDs())
	}
}

func TestSealerNoKey(t *testing.T) {
	for name, s := range map[string]*Sealer{"nil": nil, "empty": mustSealer(t)} {
		if s.CanSeal() {
			t.Errorf("%s: CanSeal", name)
		}
		_, err := s.Seal([]byte("x"))
		if !errors.Is(err, ErrNoKey) {
			t.Fatalf("%s: Seal error %v, want ErrNoKey", name, err)
		}
		for _, want := range []string{"plain text", "kubesvc.dynamicAccounts.encryptionKey", "kubesvc.dynamicAccounts.encryptionKeyFile"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ErrNoKey message %q lacks %q", err, want)
			}
		}
		// Storing: inline contents are refused, references and paths pass.
		_, err = s.SealSource(Source{KubeconfigContents: testKubeconfig("SENTINEL-nokey")})
		var ce *Error
		if !errors.Is(err, ErrNoKey) || !errors.As(err, &ce) || ce.Field != FieldKubeconfigContents {
			t.Fatalf("%s: SealSource inline: %v", name, err)
		}
		assertNoSecret(t, "SealSource error", err.Error(), "SENTINEL-nokey")
		for _, src := range []Source{
			{KubeconfigFile: "encryptedFile:k8s!n:kc!k:config!ns:spinnaker"},
			{KubeconfigContents: "encryptedFile:k8s!n:kc!k:config!ns:spinnaker"},
			{KubeconfigContents: "encrypted:k8s!n:kc!k:config"},
			{KubeconfigFile: "/etc/kubeconfig"},
			{KubeconfigAgent: "/agent/kubeconfig"},
			{ServiceAccount: true},
		} {
			got, err := s.SealSource(src)
			if err != nil || got != src {
				t.Errorf("%s: SealSource(%+v) = %+v, %v; want it unchanged", name, src, got, err)
			}
		}
	}
}

func TestSealSource(t *testing.T) {
	s := mustSealer(t, newKey(t))
	kc := testKubeconfig("t0ken")
	got, err := s.SealSource(Source{KubeconfigContents: kc, Context: "ctx2"})
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(got.KubeconfigContents) || got.Context != "ctx2" {
		t.Fatalf("SealSource = %+v", got)
	}
	again, err := s.SealSource(got)
	if err != nil || again != got {
		t.Fatalf("SealSource of a sealed source changed it: %v", err)
	}
	if plain, err := s.Open(got.KubeconfigContents); err != nil || string(plain) != kc {
		t.Fatalf("Open = %q, %v", plain, err)
	}
	for _, src := range []Source{{KubeconfigFile: kc}, {KubeconfigAgent: kc}} {
		if _, err := s.SealSource(src); err == nil || !strings.Contains(err.Error(), "holds kubeconfig contents") {
			t.Errorf("SealSource(content in a path field) = %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	key := newKey(t)
	for name, in := range map[string]string{
		"raw":           string(key),
		"base64":        base64.StdEncoding.EncodeToString(key),
		"base64 raw":    base64.RawStdEncoding.EncodeToString(key),
		"base64 url":    base64.URLEncoding.EncodeToString(key),
		"base64 spaces": "  " + base64.StdEncoding.EncodeToString(key) + "\n",
		"hex":           hex.EncodeToString(key),
	} {
		got, err := ParseKey(in)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: ParseKey = %x, %v", name, got, err)
		}
	}
	for _, in := range []string{"", "short", base64.StdEncoding.EncodeToString(key[:16]), hex.EncodeToString(key[:31])} {
		_, err := ParseKey(in)
		if err == nil {
			t.Errorf("ParseKey(%q): no error", in)
			continue
		}
		if in != "" {
			assertNoSecret(t, "ParseKey error", err.Error(), in)
		}
	}
	if _, err := NewSealer(key[:16]); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

func TestKeyFileAndConfig(t *testing.T) {
	dir := t.TempDir()
	key, prev := newKey(t), newKey(t)
	rawFile := filepath.Join(dir, "raw.key")
	b64File := filepath.Join(dir, "b64.key")
	if err := os.WriteFile(rawFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b64File, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{rawFile, b64File} {
		got, err := ReadKeyFile(p)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ReadKeyFile(%s) = %x, %v", p, got, err)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadKeyFile(missing) = %v", err)
	}

	s, err := NewSealerFromConfig(KeyConfig{KeyFile: b64File, PreviousKeys: []string{hex.EncodeToString(prev)}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); len(ids) != 2 || ids[0] != KeyID(key) || ids[1] != KeyID(prev) {
		t.Fatalf("KeyIDs = %v", ids)
	}
	if s, err := NewSealerFromConfig(KeyConfig{}); err != nil || s.CanSeal() {
		t.Fatalf("empty config: %v, CanSeal %v", err, s.CanSeal())
	}
	for name, c := range map[string]KeyConfig{
		"both":          {Key: base64.StdEncoding.EncodeToString(key), KeyFile: b64File},
		"previous only": {PreviousKeys: []string{base64.StdEncoding.EncodeToString(key)}},
		"bad key":       {Key: "not-a-key"},
		"bad previous":  {Key: base64.StdEncoding.EncodeToString(key), PreviousKeys: []string{"nope"}},
	} {
		if _, err := NewSealerFromConfig(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
