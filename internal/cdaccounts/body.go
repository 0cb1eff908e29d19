package cdaccounts

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/httpapi"
)

// body is an account definition as Clouddriver stores it: a JSON object
// naming its type in "type" (or, in rows written by older Clouddriver
// versions, "@type").
type body struct {
	fields map[string]json.RawMessage
	typ    string
	name   string
}

// errBadBody is wrapped by every error about a malformed definition; the
// interceptor answers it with a 400.
var errBadBody = errors.New("malformed account definition")

// parseBody decodes a definition. A missing or non-string type or name is
// an error in the words Clouddriver (Jackson) uses.
func parseBody(raw []byte) (body, error) {
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&b.fields); err != nil || b.fields == nil {
		msg := "body: expected object"
		if err != nil {
			msg = httpapi.DecodeError("", err).Error()
		}
		return body{}, fmt.Errorf("%w: JSON parse error: %s", errBadBody, msg)
	}
	if dec.More() {
		return body{}, fmt.Errorf("%w: JSON parse error: trailing data after the account definition", errBadBody)
	}
	for _, key := range []string{"type", "@type"} {
		if v, ok := b.fields[key]; ok {
			if err := json.Unmarshal(v, &b.typ); err != nil || b.typ == "" {
				return body{}, fmt.Errorf("%w: JSON parse error: type id property '%s' must be a non-empty string", errBadBody, key)
			}
			break
		}
	}
	if b.typ == "" {
		return body{}, fmt.Errorf("%w: JSON parse error: could not resolve subtype of CredentialsDefinition: missing type id property 'type'", errBadBody)
	}
	if v, ok := b.fields["name"]; ok {
		if err := json.Unmarshal(v, &b.name); err != nil {
			return body{}, fmt.Errorf("%w: JSON parse error: name must be a string", errBadBody)
		}
	}
	if strings.TrimSpace(b.name) == "" {
		return body{}, fmt.Errorf("%w: the account definition has no name", errBadBody)
	}
	return b, nil
}

// bytes is the definition as Clouddriver writes it today: compact JSON,
// the type in "type" (an "@type" of an older client is renamed).
func (b body) bytes() []byte {
	m := make(map[string]json.RawMessage, len(b.fields))
	for k, v := range b.fields {
		if k != "@type" {
			m[k] = v
		}
	}
	m["type"], _ = json.Marshal(b.typ)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	var out bytes.Buffer
	_ = json.Compact(&out, buf.Bytes())
	return out.Bytes()
}

// definition is the Kubernetes account the body describes, for
// kubesvc_accounts: the type fields are left out (the row's type says
// it).
func (b body) definition() (dynaccounts.Definition, error) {
	m := make(map[string]json.RawMessage, len(b.fields))
	for k, v := range b.fields {
		if k != "type" && k != "@type" {
			m[k] = v
		}
	}
	raw, _ := json.Marshal(m)
	d, err := dynaccounts.ParseDefinition(raw)
	if err != nil {
		return dynaccounts.Definition{}, fmt.Errorf("%w: %v", errBadBody, err)
	}
	return d, nil
}

// plainKubeconfig returns the credential field of d that holds kubeconfig
// content in plain text, "" if none: kubeconfigContents that is not a
// secret reference, and kubeconfigFile or kubeconfigAgent holding content
// instead of a path or reference. Clouddriver would store it as it is in
// accounts.body (the REST API seals kubeconfigContents; here nothing is
// sealed), so the interceptor refuses it instead. Unknown fields holding
// a kubeconfig are refused by definition.
func plainKubeconfig(d dynaccounts.Definition) string {
	switch {
	case d.KubeconfigContents != "" && !credentials.IsRef(d.KubeconfigContents):
		return credentials.FieldKubeconfigContents
	case credentials.LooksLikeContent(d.KubeconfigFile):
		return credentials.FieldKubeconfigFile
	case credentials.LooksLikeContent(d.KubeconfigAgent):
		return credentials.FieldKubeconfigAgent
	}
	return ""
}

// otherKubeconfig is plainKubeconfig for a definition of another type,
// which the interceptor stores as it is when no Clouddriver URL is set:
// the path of a field holding a kubeconfig (credentials.FindKubeconfig),
// "" if none.
func (b body) otherKubeconfig() string {
	m := make(map[string]any, len(b.fields))
	for k, v := range b.fields {
		var x any
		if json.Unmarshal(v, &x) == nil {
			m[k] = x
		}
	}
	if p, found := credentials.FindKubeconfig(m); found {
		return cmp.Or(p, "the definition")
	}
	return ""
}
