package dynaccounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/accountrules"
	"github.com/kubesvc/kubesvc/internal/credentials"
	"github.com/kubesvc/kubesvc/internal/httpapi"
	"github.com/kubesvc/kubesvc/internal/ident"
)

// Lifecycle states (kubesvc_accounts.state).
const (
	Inactive     = "INACTIVE"
	ToMigrate    = "TO_MIGRATE"
	Activating   = "ACTIVATING"
	Active       = "ACTIVE"
	Failed       = "FAILED"
	Orphaned     = "ORPHANED"
	ToDeactivate = "TO_DEACTIVATE"
	Deactivating = "DEACTIVATING"
	Deleting     = "DELETING"
	DeleteFailed = "DELETE_FAILED"
)

// Definition is an account as the REST API receives it. Fields this
// package does not use are kept in Extra and stored with the definition,
// so a Clouddriver account definition survives the round trip.
type Definition struct {
	Name                      string              `json:"name"`
	ZoneID                    string              `json:"zoneId,omitempty"`
	KubeconfigFile            string              `json:"kubeconfigFile,omitempty"`
	KubeconfigContents        string              `json:"kubeconfigContents,omitempty"`
	KubeconfigAgent           string              `json:"kubeconfigAgent,omitempty"`
	ServiceAccount            bool                `json:"serviceAccount,omitempty"`
	Context                   string              `json:"context,omitempty"`
	Namespaces                []string            `json:"namespaces,omitempty"`
	OmitNamespaces            []string            `json:"omitNamespaces,omitempty"`
	Kinds                     []string            `json:"kinds,omitempty"`
	OmitKinds                 []string            `json:"omitKinds,omitempty"`
	OnlyNamespacedResources   bool                `json:"onlyNamespacedResources,omitempty"`
	MaxResumableResourceAgeMs int64               `json:"maxResumableResourceAgeMs,omitempty"`
	Permissions               map[string][]string `json:"permissions,omitempty"`
	// CustomResourceDefinitions: custom kinds ("Kind.group") exposed as
	// synthetic CRDs with onlyNamespacedResources, as in the agent's file.
	CustomResourceDefinitions []CustomResourceDefinition `json:"customResourceDefinitions,omitempty"`
	Extra                     map[string]any             `json:"-"`
}

// CustomResourceDefinition is one customResourceDefinitions entry.
type CustomResourceDefinition struct {
	Kind  string `json:"kind"`
	Scope string `json:"scope,omitempty"`
}

var knownFields = map[string]bool{
	"name": true, "zoneId": true, "kubeconfigFile": true, "kubeConfigFile": true, "kubeconfigContents": true,
	"kubeconfigAgent": true, "serviceAccount": true, "context": true, "namespaces": true, "omitNamespaces": true,
	"kinds": true, "omitKinds": true, "onlyNamespacedResources": true, "maxResumableResourceAgeMs": true,
	"permissions": true, "customResourceDefinitions": true,
}

// decodeDefinition decodes one definition object and validates it. With
// strict, fields outside knownFields (and "state") are an error naming
// them; otherwise they are kept in Extra.
func decodeDefinition(raw json.RawMessage, where string, strict bool) (Definition, error) {
	d, err := decodeFields(raw, where, strict)
	if err != nil {
		return Definition{}, err
	}
	return d, d.validate(where)
}

// decodeFields is decodeDefinition without validate.
func decodeFields(raw json.RawMessage, where string, strict bool) (Definition, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Definition{}, fmt.Errorf("%s: must be a JSON object", where)
	}
	var d Definition
	d.Extra = map[string]any{}
	for k, v := range fields {
		var err error
		switch k {
		case "name":
			err = json.Unmarshal(v, &d.Name)
		case "zoneId":
			err = json.Unmarshal(v, &d.ZoneID)
		case "kubeconfigFile", "kubeConfigFile":
			err = json.Unmarshal(v, &d.KubeconfigFile)
		case "kubeconfigContents":
			err = json.Unmarshal(v, &d.KubeconfigContents)
		case "kubeconfigAgent":
			err = json.Unmarshal(v, &d.KubeconfigAgent)
		case "serviceAccount":
			err = json.Unmarshal(v, &d.ServiceAccount)
		case "context":
			err = json.Unmarshal(v, &d.Context)
		case "namespaces":
			err = json.Unmarshal(v, &d.Namespaces)
		case "omitNamespaces":
			err = json.Unmarshal(v, &d.OmitNamespaces)
		case "kinds":
			err = json.Unmarshal(v, &d.Kinds)
		case "omitKinds":
			err = json.Unmarshal(v, &d.OmitKinds)
		case "onlyNamespacedResources":
			err = json.Unmarshal(v, &d.OnlyNamespacedResources)
		case "maxResumableResourceAgeMs":
			err = json.Unmarshal(v, &d.MaxResumableResourceAgeMs)
		case "permissions":
			err = json.Unmarshal(v, &d.Permissions)
		case "customResourceDefinitions":
			err = json.Unmarshal(v, &d.CustomResourceDefinitions)
		case "state":
			// PATCH's desired state, read by the caller.
		default:
			var x any
			err = json.Unmarshal(v, &x)
			if strict && err == nil {
				// The same words as for an unknown field kept in Extra
				// (extraContent), and a hint for a miscapitalised one.
				if cerr := unknownFieldContent(where, k, x); cerr != nil {
					return Definition{}, cerr
				}
				if hint := fieldHint(k); hint != "" {
					return Definition{}, fmt.Errorf("%s.%s: unknown field; %s", where, k, hint)
				}
				return Definition{}, fmt.Errorf("%s.%s: unknown field", where, k)
			}
			d.Extra[k] = x
		}
		if err != nil {
			return Definition{}, httpapi.DecodeError(where+"."+k, err)
		}
	}
	return d, nil
}

func (d Definition) validate(where string) error {
	switch {
	case ident.Account(d.Name) != nil:
		return fmt.Errorf("%s.name: %w", where, ident.Account(d.Name))
	case d.ZoneID != "" && strings.TrimSpace(d.ZoneID) == "":
		return fmt.Errorf("%s.zoneId: blank", where)
	case len(d.Namespaces) > 0 && len(d.OmitNamespaces) > 0:
		return fmt.Errorf("%s.omitNamespaces: cannot be combined with namespaces", where)
	case d.MaxResumableResourceAgeMs < 0:
		return fmt.Errorf("%s.maxResumableResourceAgeMs: must not be negative", where)
	case credentials.LooksLikeKubeconfig(d.Context):
		return fmt.Errorf("%s.context: holds kubeconfig contents, not the name of a context in the kubeconfig", where)
	}
	for _, f := range []struct {
		field string
		list  []string
	}{{"namespaces", d.Namespaces}, {"omitNamespaces", d.OmitNamespaces}} {
		field, list := f.field, f.list
		for i, ns := range list {
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				return fmt.Errorf("%s.%s[%d]: %q is not a namespace name: %s", where, field, i, ns, strings.Join(msgs, "; "))
			}
		}
	}
	for _, f := range []struct {
		field string
		list  []string
	}{{"kinds", d.Kinds}, {"omitKinds", d.OmitKinds}} {
		field, list := f.field, f.list
		for i, k := range list {
			if strings.TrimSpace(k) == "" {
				return fmt.Errorf("%s.%s[%d]: empty kind", where, field, i)
			}
		}
	}
	// As the agent's configuration refuses them (accountrules).
	if p := accountrules.Kinds(d.Kinds, d.OmitKinds); len(p) > 0 {
		return fmt.Errorf("%s.%w", where, p[0])
	}
	for _, key := range slices.Sorted(maps.Keys(d.Permissions)) {
		if err := accountrules.AuthorizationKey(key); err != nil {
			return fmt.Errorf("%s.permissions.%s: %w", where, key, err)
		}
		if p := accountrules.Roles(key, d.Permissions[key]); len(p) > 0 {
			return fmt.Errorf("%s.%w", where, p[0])
		}
	}
	for i, c := range d.CustomResourceDefinitions {
		if kind, group, _ := strings.Cut(c.Kind, "."); kind == "" || group == "" {
			return fmt.Errorf("%s.customResourceDefinitions[%d].kind: must be Kind.group, e.g. ServiceMonitor.monitoring.coreos.com, got %q", where, i, c.Kind)
		}
		if c.Scope != "" && !strings.EqualFold(c.Scope, "Namespaced") && !strings.EqualFold(c.Scope, "Cluster") {
			return fmt.Errorf("%s.customResourceDefinitions[%d].scope: must be Namespaced or Cluster, got %q", where, i, c.Scope)
		}
	}
	return d.extraContent(where)
}

// extraContent refuses a field this package does not know (kept in Extra,
// and stored as it is) that holds kubeconfig contents, such as a
// miscapitalised kubeConfigContents: it would keep the kubeconfig in plain
// text (unknownFieldContent).
func (d Definition) extraContent(where string) error {
	for _, k := range slices.Sorted(maps.Keys(d.Extra)) {
		if err := unknownFieldContent(where, k, d.Extra[k]); err != nil {
			return err
		}
	}
	return nil
}

// unknownFieldContent refuses unknown field k, of decoded value v, when it
// holds kubeconfig contents. The error names the field (within where, if
// not empty), never the content, and suggests the field meant when there
// is an obvious one (fieldHint).
func unknownFieldContent(where, k string, v any) error {
	p, found := credentials.FindKubeconfig(map[string]any{k: v})
	if !found {
		return nil
	}
	if p == "" {
		p = k
	}
	if where != "" {
		p = where + "." + p
	}
	advice := fieldHint(k)
	if advice == "" {
		advice = "give the kubeconfig in kubeconfigContents, or refer to it with kubeconfigFile"
	}
	return fmt.Errorf("%s: unknown field holding kubeconfig contents, which would be stored in plain text; %s", p, advice)
}

// fieldHint suggests the known field an unknown field name k obviously
// means: one of knownFields in another case, or kubeconfigContents in
// other words; "" when there is none.
func fieldHint(k string) string {
	if strings.EqualFold(k, credentials.FieldKubeconfigContents) {
		return "did you mean kubeconfigContents? Field names are case-sensitive"
	}
	if meansContents(k) {
		return "did you mean kubeconfigContents?"
	}
	for _, f := range append(slices.Sorted(maps.Keys(knownFields)), "state") {
		if strings.EqualFold(k, f) && f != "kubeConfigFile" { // an alias, not the name to suggest
			return "did you mean " + f + "? Field names are case-sensitive"
		}
	}
	return ""
}

// meansContents reports whether an unknown field's name obviously means
// kubeconfigContents (kubeconfig, kube_config_contents, kubeconfigData, ...).
func meansContents(key string) bool {
	switch strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(key)) {
	case "kubeconfig", "kubeconfigcontent", "kubeconfigcontents", "kubeconfigdata", "kubeconfigyaml", "kubeconfigbase64":
		return true
	}
	return false
}

// stored is the definition as kept in kubesvc_accounts.definition: every
// field except credential content (which is sealed separately). Contents
// in a field that should not hold them (kubeconfigFile, kubeconfigAgent,
// context, an unknown field) are refused before anything is stored (see
// validate and Credentials.Store); a definition that gets here with them
// anyway, such as an import recorded FAILED for them, is stored without
// those fields, so that kubeconfigs never reach the table in plain text.
func (d Definition) stored() []byte {
	m := map[string]any{}
	for k, v := range d.Extra {
		if _, found := credentials.FindKubeconfig(map[string]any{k: v}); !found {
			m[k] = v
		}
	}
	if credentials.LooksLikeContent(d.KubeconfigFile) {
		d.KubeconfigFile = ""
	}
	if credentials.LooksLikeContent(d.KubeconfigAgent) {
		d.KubeconfigAgent = ""
	}
	if credentials.LooksLikeKubeconfig(d.Context) {
		d.Context = ""
	}
	// A secret reference in kubeconfigContents is kept (it is resolved at
	// activation); inline content is sealed, not kept here.
	ref := d.KubeconfigContents
	if !credentials.IsRef(ref) {
		ref = ""
	}
	raw, _ := json.Marshal(struct {
		Definition
		KubeconfigContents string `json:"kubeconfigContents,omitempty"`
	}{Definition: d, KubeconfigContents: ref})
	var known map[string]any
	_ = json.Unmarshal(raw, &known)
	for k, v := range known {
		m[k] = v
	}
	if ref == "" {
		delete(m, "kubeconfigContents")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return bytes.TrimSpace(b.Bytes())
}

// loadDefinition reads a stored definition. It is not validated again: a
// row stored before a check was added still loads whole (Extra too).
func loadDefinition(raw []byte) Definition {
	d, err := decodeFields(raw, "definition", false)
	if err != nil {
		var fallback Definition
		_ = json.Unmarshal(raw, &fallback)
		return fallback
	}
	return d
}

// toProto is the account as sent to an agent, with its kubeconfig.
func (d Definition) toProto(kubeconfig []byte) *kubesvcv1.DynamicAccount {
	return &kubesvcv1.DynamicAccount{
		Name:                      d.Name,
		KubeconfigBase64:          encodeBase64(kubeconfig),
		Context:                   d.Context,
		ServiceAccount:            d.ServiceAccount,
		Namespaces:                d.Namespaces,
		OmitNamespaces:            d.OmitNamespaces,
		Kinds:                     d.Kinds,
		OmitKinds:                 d.OmitKinds,
		OnlyNamespacedResources:   d.OnlyNamespacedResources,
		MaxResumableResourceAgeMs: d.MaxResumableResourceAgeMs,
		CustomResourceDefinitions: crdsToProto(d.CustomResourceDefinitions),
	}
}

func crdsToProto(list []CustomResourceDefinition) []*kubesvcv1.CustomResourceDefinition {
	var out []*kubesvcv1.CustomResourceDefinition
	for _, c := range list {
		out = append(out, &kubesvcv1.CustomResourceDefinition{Kind: c.Kind, Scope: c.Scope})
	}
	return out
}
