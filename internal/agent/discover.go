package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// skippedGroupResources are served twice by Kubernetes under different
// groups; the agent watches only the core copy.
var skippedGroupResources = map[schema.GroupResource]bool{
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// discoverStreams lists every resource the account should watch (preferred
// versions, verbs list and watch, filters applied) and returns one stream
// key per resource, or per resource and namespace when the account is
// restricted to namespaces. Groups that fail discovery are returned in
// failed (by group name): their streams must be left as they are, not
// removed, until a later rediscovery succeeds.
func discoverStreams(dc discovery.DiscoveryInterface, a Account, log *slog.Logger) (_ []*kubesvcv1.StreamKey, failed map[string]bool, _ error) {
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		var gdf *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &gdf) || len(lists) == 0 {
			err = serverAnswer(dc, err)
			return nil, nil, fmt.Errorf("discover resources: %w%s", err, credentialsHint(a, err))
		}
		failed = map[string]bool{}
		for gv := range gdf.Groups {
			failed[gv.Group] = true
		}
		log.Warn("some API groups failed discovery; their streams stay as they are", "err", err)
	}
	var out []*kubesvcv1.StreamKey
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !watchable(gv, r) || !a.wantsKind(r.Kind, gv.Group) || (a.OnlyNamespacedResources && !r.Namespaced) {
				continue
			}
			res := &kubesvcv1.Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind, Namespaced: r.Namespaced}
			if r.Namespaced && len(a.Namespaces) > 0 {
				for _, ns := range a.Namespaces {
					k := &kubesvcv1.StreamKey{Account: a.Name, Resource: res, Namespace: ns}
					k.SelectorHash = selectorHash(namespaceSelector(k, a.OmitNamespaces))
					out = append(out, k)
				}
				continue
			}
			k := &kubesvcv1.StreamKey{Account: a.Name, Resource: res}
			k.SelectorHash = selectorHash(namespaceSelector(k, a.OmitNamespaces))
			out = append(out, k)
		}
	}
	out = append(out, syntheticStreams(a)...)
	sort.Slice(out, func(i, j int) bool { return streamID(out[i]) < streamID(out[j]) })
	return out, failed, nil
}

// serverAnswer returns err, or, when it is a refusal whose message
// client-go's discovery lost (403 "unknown": it asks for the aggregated
// discovery format and cannot read the Status the server answers), the
// refusal as the API server words it, asked again as plain JSON.
func serverAnswer(dc discovery.DiscoveryInterface, err error) error {
	var se *apierrors.StatusError
	if !errors.As(err, &se) || (!apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err)) ||
		(se.ErrStatus.Message != "" && se.ErrStatus.Message != "unknown") {
		return err
	}
	rc := dc.RESTClient()
	if rc == nil || reflect.ValueOf(rc).IsNil() {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	again := rc.Get().AbsPath("/api").SetHeader("Accept", "application/json").Do(ctx).Error()
	if again == nil || (!apierrors.IsForbidden(again) && !apierrors.IsUnauthorized(again)) {
		return err
	}
	return again
}

// credentialsHint completes a refusal of discovery with what to check: an
// anonymous user means the kubeconfig's user has no credentials the agent
// recognises (a key misspelt, tokenn), a 401 credentials refused.
func credentialsHint(a Account, err error) string {
	source := "the account's credentials"
	if a.KubeconfigFile != "" {
		source = "the user of kubeconfig file " + a.KubeconfigFile
	}
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "system:anonymous"):
		return fmt.Sprintf(" (the API server sees an anonymous user: %s has no credentials the agent recognises; check its keys: token, tokenFile, client-certificate-data and client-key-data, exec)", source)
	case apierrors.IsUnauthorized(err):
		return fmt.Sprintf(" (the API server refused %s: a token or certificate revoked, expired or of another cluster)", source)
	}
	return ""
}

// selectorHash fingerprints a field selector for StreamKey.selector_hash.
func selectorHash(selector string) string {
	if selector == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(selector))
	return hex.EncodeToString(sum[:8])
}

// sameStream reports whether two keys of one streamID describe the same
// stream: same version, kind, scope and selector.
func sameStream(a, b *kubesvcv1.StreamKey) bool {
	ra, rb := a.GetResource(), b.GetResource()
	return ra.GetVersion() == rb.GetVersion() && ra.GetKind() == rb.GetKind() &&
		ra.GetNamespaced() == rb.GetNamespaced() && a.GetSelectorHash() == b.GetSelectorHash()
}

func watchable(gv schema.GroupVersion, r metav1.APIResource) bool {
	if strings.Contains(r.Name, "/") || skippedGroupResources[schema.GroupResource{Group: gv.Group, Resource: r.Name}] {
		return false
	}
	return slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch")
}

// wantsKind applies kinds and omitKinds. Entries are kind names, matched
// case-insensitively ("deployment"), or "kind.group" to name one group.
func (a Account) wantsKind(kind, group string) bool {
	if len(a.Kinds) > 0 && !matchKind(a.Kinds, kind, group) {
		return false
	}
	return !a.omitsKind(kind, group)
}

// omitsKind applies omitKinds alone.
func (a Account) omitsKind(kind, group string) bool { return matchKind(a.OmitKinds, kind, group) }

func matchKind(list []string, kind, group string) bool {
	for _, k := range list {
		k = strings.ToLower(k)
		if name, g, ok := strings.Cut(k, "."); ok {
			if name == strings.ToLower(kind) && g == strings.ToLower(group) {
				return true
			}
		} else if k == strings.ToLower(kind) {
			return true
		}
	}
	return false
}

// streamID is a map key for a stream.
func streamID(k *kubesvcv1.StreamKey) string {
	r := k.GetResource()
	return k.GetAccount() + "|" + r.GetGroup() + "|" + r.GetResource() + "|" + k.GetNamespace()
}

// kindsAllFound reports whether the account names its kinds and every one
// of them was discovered: no CRD created later can add a stream then, and
// one deleted makes its stream fail and trigger a rediscovery, so the
// account needs no CRD watch.
func (a Account) kindsAllFound(keys []*kubesvcv1.StreamKey) bool {
	return len(a.Kinds) > 0 && len(a.missingKinds(keys)) == 0
}

// missingKinds lists the kinds the account names that discovery did not
// find among keys: a typo, or a custom resource not installed (yet).
func (a Account) missingKinds(keys []*kubesvcv1.StreamKey) []string {
	var missing []string
	for _, want := range a.Kinds {
		if !slices.ContainsFunc(keys, func(k *kubesvcv1.StreamKey) bool {
			r := k.GetResource()
			return (Account{Kinds: []string{want}}).wantsKind(r.GetKind(), r.GetGroup())
		}) {
			missing = append(missing, want)
		}
	}
	return missing
}
