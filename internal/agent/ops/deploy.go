package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/agent/scrub"
	"k8s.io/apimachinery/pkg/util/validation"
)

type monikerDesc struct {
	App      string `json:"app"`
	Cluster  string `json:"cluster"`
	Stack    string `json:"stack"`
	Detail   string `json:"detail"`
	Sequence optInt `json:"sequence"`
}

// deployDesc is Clouddriver's KubernetesDeployManifestDescription.
type deployDesc struct {
	Account                string            `json:"account"`
	Credentials            string            `json:"credentials"` // the account's older name
	Application            string            `json:"application"`
	Manifests              []json.RawMessage `json:"manifests"`
	Manifest               json.RawMessage   `json:"manifest"` // deprecated single manifest
	Moniker                *monikerDesc      `json:"moniker"`
	NamespaceOverride      string            `json:"namespaceOverride"`
	Versioned              optBool           `json:"versioned"`
	Source                 string            `json:"source"`
	Strategy               json.RawMessage   `json:"strategy"` // RED_BLACK, HIGHLANDER, NONE
	EnableTraffic          optBool           `json:"enableTraffic"`
	Services               []string          `json:"services"`
	SkipSpecTemplateLabels optBool           `json:"skipSpecTemplateLabels"`
	RequiredArtifacts      []Artifact        `json:"requiredArtifacts"`
	OptionalArtifacts      []Artifact        `json:"optionalArtifacts"`
	EnableArtifactBinding  optBool           `json:"enableArtifactBinding"`
	// LabelSelectors deploys only the manifests whose labels match
	// (Clouddriver's, as for delete); with none matching the deploy fails
	// unless AllowNothingSelected.
	LabelSelectors       json.RawMessage `json:"labelSelectors"`
	AllowNothingSelected optBool         `json:"allowNothingSelected"`
}

type deployOp struct {
	d      deployDesc
	items  []*manifest
	runJob bool
	// pending are the items of a kind the cluster does not serve yet but a
	// CustomResourceDefinition of this deploy defines (set by check): they
	// are applied once it is established.
	pending []*manifest
	// selector (labelSelectors) chooses the manifests applied, on their
	// labels as deployed (moniker labels included), as kubectl apply
	// --selector does for Clouddriver; nil: all.
	selector labels.Selector
}

func parseDeploy(payload []byte) (operation, error) {
	var d deployDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	if d.Account == "" {
		d.Account = d.Credentials
	}
	raws, field := d.Manifests, "manifests"
	if !slices.ContainsFunc(raws, func(r json.RawMessage) bool { return !isNull(r) }) && !isNull(d.Manifest) {
		raws, field = []json.RawMessage{d.Manifest}, "manifest"
	}
	if len(raws) == 0 {
		msg := "required: at least one manifest"
		if d.Source == "artifact" {
			msg += " (with source artifact the caller resolves manifestArtifact into manifests)"
		}
		return nil, invalid("manifests", "%s", msg)
	}
	items, err := parseManifests(field, raws)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, invalid(field, "required: at least one manifest (every one given is null)")
	}
	sel, err := parseSelectors(d.LabelSelectors)
	if err != nil {
		return nil, err
	}
	if sel != nil && sel.Empty() {
		sel = nil
	}
	if err := checkNamespace("namespaceOverride", d.NamespaceOverride); err != nil {
		return nil, err
	}
	if d.Moniker == nil {
		d.Moniker = &monikerDesc{}
	}
	if d.Moniker.App == "" {
		d.Moniker.App = d.Application
	}
	if d.Moniker.App == "" {
		for _, it := range items {
			if it.obj.GetAnnotations()[AnnotationMonikerApplication] == "" {
				return nil, invalid("moniker.app", "required: the Spinnaker application of the manifests")
			}
		}
	}
	for i, s := range d.Services {
		if _, err := parseLoadBalancer(fmt.Sprintf("services[%d]", i), s); err != nil {
			return nil, err
		}
	}
	if err := checkArtifacts("requiredArtifacts", d.RequiredArtifacts); err != nil {
		return nil, err
	}
	if err := checkArtifacts("optionalArtifacts", d.OptionalArtifacts); err != nil {
		return nil, err
	}
	op := &deployOp{d: d, items: items, selector: sel}
	// What prepare would refuse from the description alone, refused here,
	// where the control plane runs it too (a 400, nothing sent).
	for _, it := range items {
		if err := op.checkStrategy(it.field, strategyOf(it.obj.GetAnnotations())); err != nil {
			return nil, err
		}
		if receivesTraffic(it.obj.GroupVersionKind().GroupKind()) {
			if err := setTraffic(it.obj.DeepCopy(), d.Services); err != nil {
				return nil, &ValidationError{Field: joinField(it.field, "metadata.annotations"), Message: err.Error()}
			}
		}
	}
	return op, nil
}

func checkArtifacts(field string, as []Artifact) error {
	for i, a := range as {
		if a.Type == "" {
			return invalid(fmt.Sprintf("%s[%d].type", field, i), "required")
		}
	}
	return nil
}

func (o *deployOp) check(_ context.Context, e *Executor) error {
	o.pending = nil
	for _, it := range o.items {
		fresh, err := it.resolve(e)
		var ve *ValidationError
		if errors.As(err, &ve) && meta.IsNoMatchError(ve.Err) && o.definesKind(it.obj.GroupVersionKind()) {
			o.pending = append(o.pending, it) // served once its CRD is applied
			continue
		}
		if err != nil {
			return err
		}
		if fresh {
			o.place(e, it)
		}
	}
	return nil
}

// place sets a resolved item's namespace: namespaceOverride, else its
// own, else the default, for a namespaced kind; none otherwise.
func (o *deployOp) place(e *Executor, it *manifest) {
	ns := o.d.NamespaceOverride
	if ns == "" {
		ns = it.obj.GetNamespace()
	}
	it.obj.SetNamespace(e.namespaceFor(it.mapping, ns))
}

// deployPlan is a manifest ready to be sent, with the artifact it creates.
type deployPlan struct {
	m        *manifest
	strategy strategy
	artifact Artifact
}

func (o *deployOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	items := slices.DeleteFunc(slices.Clone(o.items), func(it *manifest) bool { return slices.Contains(o.pending, it) })
	slices.SortStableFunc(items, func(a, b *manifest) int {
		return deployPriority(a.mapping.GroupVersionKind.GroupKind()) - deployPriority(b.mapping.GroupVersionKind.GroupKind())
	})
	binding := o.d.EnableArtifactBinding.or(true)
	all := map[string]Artifact{}
	if binding {
		for _, a := range slices.Concat(o.d.RequiredArtifacts, o.d.OptionalArtifacts) {
			if _, ok := all[a.key()]; !ok {
				all[a.key()] = a
			}
		}
	}
	// The versioned artifacts this deploy numbers are its own until it
	// has applied them.
	unlock, err := o.lockVersions(ctx, e, items)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	var res Result
	var done []string
	prepare := func(items []*manifest) ([]deployPlan, error) {
		plans := make([]deployPlan, 0, len(items))
		for _, it := range items {
			p, err := o.prepare(ctx, e, it, all, &res, binding)
			if err != nil {
				return nil, err
			}
			plans = append(plans, p)
		}
		return plans, nil
	}
	plans, err := prepare(items)
	if err != nil {
		return Result{}, err
	}
	// Everything that can refuse the deploy is checked before its first
	// write, the objects that wait for their CRD included.
	pendingSelected, err := o.precheckPending(all, &res, binding)
	if err != nil {
		return Result{}, err
	}
	if binding {
		if err := unbound("requiredArtifacts", o.d.RequiredArtifacts, res.BoundArtifacts); err != nil {
			return Result{}, err
		}
	}
	plans = o.selected(plans)
	if o.selector != nil && len(plans)+pendingSelected == 0 && !o.d.AllowNothingSelected.or(false) {
		return Result{}, invalid("labelSelectors", "%q selects none of the %d manifests (on their labels as deployed); set allowNothingSelected to deploy nothing instead",
			o.selector.String(), len(o.items))
	}
	if err := o.apply(ctx, e, plans, &res, &done); err != nil {
		return Result{}, err
	}
	if len(o.pending) > 0 {
		// Objects of the kinds the CRDs just applied define.
		if err := o.awaitPending(ctx, e); err != nil {
			return Result{}, fmt.Errorf("deploy (applied before: %s): %w", strings.Join(done, ", "), err)
		}
		unlockPending, err := o.lockVersions(ctx, e, o.pending)
		if err != nil {
			return Result{}, err
		}
		defer unlockPending()
		plans, err := prepare(o.pending)
		if err != nil {
			return Result{}, fmt.Errorf("deploy (applied before: %s): %w", strings.Join(done, ", "), err)
		}
		if err := o.apply(ctx, e, o.selected(plans), &res, &done); err != nil {
			return Result{}, err
		}
	}
	if o.runJob {
		res.DeployedNamesByLocation = maps.Clone(res.ManifestNamesByNamespace)
	}
	return res, nil
}

// lockVersions takes the version locks of the resolved items this deploy
// numbers (versioned kinds), so that two deploys of one object do not
// pick the same version; the func releases them.
func (o *deployOp) lockVersions(ctx context.Context, e *Executor, items []*manifest) (func(), error) {
	var keys []string
	for _, it := range items {
		gk := it.mapping.GroupVersionKind.GroupKind()
		if base := it.obj.GetName(); base != "" && o.versioned(strategyOf(it.obj.GetAnnotations()), gk) {
			keys = append(keys, o.d.Account+"/"+KindName(gk)+"/"+it.obj.GetNamespace()+"/"+base)
		}
	}
	if len(keys) == 0 {
		return func() {}, nil
	}
	unlock, err := e.opts.Versions.lock(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("waiting for another deploy of the same versioned objects: %w", err)
	}
	return unlock, nil
}

// selected keeps the plans whose object, as it will be deployed, the
// deploy's labelSelectors select (all without them).
func (o *deployOp) selected(plans []deployPlan) []deployPlan {
	if o.selector == nil {
		return plans
	}
	return slices.DeleteFunc(plans, func(p deployPlan) bool { return !o.selector.Matches(labels.Set(p.m.obj.GetLabels())) })
}

// checkStrategy refuses strategy annotations the deploy cannot follow.
func (o *deployOp) checkStrategy(field string, st strategy) error {
	if o.redBlack() && st.maxVersionHistory != nil && *st.maxVersionHistory < 2 {
		return invalid(joinField(field, "metadata.annotations"),
			"%s must be at least 2 with the red/black strategy, got %d", AnnotationMaxVersionHistory, *st.maxVersionHistory)
	}
	return nil
}

// sortedArtifacts lists the artifacts to bind in a stable order.
func sortedArtifacts(all map[string]Artifact) []Artifact {
	return slices.SortedFunc(maps.Values(all), func(a, b Artifact) int { return strings.Compare(a.key()+a.Reference, b.key()+b.Reference) })
}

// apply sends plans in order, recording each object in res and done.
func (o *deployOp) apply(ctx context.Context, e *Executor, plans []deployPlan, res *Result, done *[]string) error {
	for _, p := range plans {
		gk := p.m.mapping.GroupVersionKind.GroupKind()
		out, err := e.deployObject(ctx, p.m.mapping, p.m.obj, p.strategy)
		if err != nil {
			what := fullName(gk, p.m.obj.GetName())
			if what == fullName(gk, "") {
				what = fullName(gk, p.m.obj.GetGenerateName()+"*")
			}
			if ns := p.m.obj.GetNamespace(); ns != "" {
				what += " in namespace " + ns
			}
			if len(*done) > 0 {
				what += fmt.Sprintf(" (applied before it: %s)", strings.Join(*done, ", "))
			}
			return fmt.Errorf("deploy %s: %w", what, err)
		}
		*done = append(*done, fullName(gk, out.GetName()))
		if p.artifact.Reference == "" { // generateName: known now
			p.artifact.Name, p.artifact.Reference = out.GetName(), out.GetName()
		}
		res.addObject(gk, out)
		res.CreatedArtifacts = addArtifacts(res.CreatedArtifacts, p.artifact)
		e.opts.Logger.Info("deployed manifest", "account", o.d.Account, "object", fullName(gk, out.GetName()), "namespace", out.GetNamespace())
	}
	return nil
}

// prepare binds artifacts, versions, annotates and labels one manifest, as
// Clouddriver's KubernetesDeployManifestOperation does, without writing.
func (o *deployOp) prepare(ctx context.Context, e *Executor, it *manifest, all map[string]Artifact, res *Result, binding bool) (deployPlan, error) {
	obj := it.obj
	gk := it.mapping.GroupVersionKind.GroupKind()
	ns := obj.GetNamespace()
	st := strategyOf(obj.GetAnnotations())
	if err := o.checkStrategy(it.field, st); err != nil {
		return deployPlan{}, err
	}
	if binding {
		res.BoundArtifacts = addArtifacts(res.BoundArtifacts, bindArtifacts(obj.Object, ns, o.d.Account, sortedArtifacts(all))...)
	}
	base := obj.GetName()
	versioned := base != "" && o.versioned(st, gk)
	var (
		version  *int
		previous string
	)
	var (
		digest string
		reused bool
	)
	if versioned {
		// Not for kinds that take traffic (ReplicaSets): the Services'
		// labels are added to their template after this, and an old
		// version's Pods may have lost them (disableManifest), which
		// applying its template again would not undo. Clouddriver, whose
		// last-applied configurations hold the stamped template, never
		// reuses them either.
		var same func(context.Context, objectVersion) (bool, error)
		switch {
		case receivesTraffic(gk):
		case gk == (schema.GroupKind{Kind: "Secret"}):
			// No digest of its values is written (below): each version
			// is compared in place.
			same = func(ctx context.Context, v objectVersion) (bool, error) {
				return e.sameSecret(ctx, it.mapping, ns, obj.Object, v)
			}
		default:
			digest = contentDigest(obj.Object)
		}
		v, prev, reuse, err := e.nextVersion(ctx, it.mapping, ns, base, "kubernetes/"+KindName(gk), digest, same)
		if err != nil {
			return deployPlan{}, err
		}
		if reused = reuse; reused {
			e.opts.Logger.Info("deploying the same content as an existing version: reusing it", "account", o.d.Account,
				"object", fullName(gk, base), "namespace", ns, "version", fmt.Sprintf("v%03d", v))
		}
		if n := len(base) + len(fmt.Sprintf("-v%03d", v)); n > validation.DNS1123SubdomainMaxLength {
			// Refused before anything of the deploy is written.
			return deployPlan{}, invalid(joinField(it.field, "metadata.name"), "%q is too long to be versioned: with its suffix -v%03d it has %d characters, more than %d",
				base, v, n, validation.DNS1123SubdomainMaxLength)
		}
		version, previous = &v, prev
	}
	mon := *o.d.Moniker
	if version != nil {
		mon.Sequence = optInt{set: true, v: int64(*version)}
	}
	if mon.Cluster == "" {
		n := base
		if n == "" {
			n = obj.GetGenerateName()
		}
		mon.Cluster = fullName(gk, n)
	}
	art := Artifact{Type: "kubernetes/" + KindName(gk), Name: base, Location: ns, Reference: base,
		Metadata: map[string]any{"account": o.d.Account}}
	if version != nil {
		art.Version = fmt.Sprintf("v%03d", *version)
		art.Reference = base + "-" + art.Version
	}
	all[art.key()] = art
	annotateArtifact(obj.Object, art)
	if st.useSourceCapacity {
		src := base
		if versioned {
			src = previous
		}
		if err := e.copyReplicas(ctx, it.mapping, ns, src, obj); err != nil {
			return deployPlan{}, err
		}
	}
	if receivesTraffic(gk) {
		if err := setTraffic(obj, o.d.Services); err != nil {
			return deployPlan{}, &ValidationError{Field: joinField(it.field, "metadata.annotations"), Message: err.Error()}
		}
		if o.d.EnableTraffic.or(true) {
			if err := e.attachForDeploy(ctx, it, o.items); err != nil {
				return deployPlan{}, err
			}
		}
	}
	applyMoniker(obj.Object, mon, o.d.SkipSpecTemplateLabels.or(false))
	if art.Reference != "" {
		obj.SetName(art.Reference)
	}
	// Sensitive kinds (Secrets): a digest of their values would be
	// readable by whoever reads their metadata, and would be streamed to
	// the control plane. Only a Clouddriver-era last-applied configuration
	// (read here, in the agent) matches them.
	if digest != "" && !scrub.IsSensitive(obj.GetAPIVersion(), obj.GetKind()) {
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationContentDigest] = digest
		obj.SetAnnotations(ann)
	}
	if reused {
		// The same content as the live version: recreating or replacing
		// it would only take it away from what uses it.
		st.recreate, st.replace = false, false
	}
	return deployPlan{m: it, strategy: st, artifact: art}, nil
}

func (o *deployOp) redBlack() bool {
	var s string
	if json.Unmarshal(o.d.Strategy, &s) != nil {
		return false
	}
	s = strings.ReplaceAll(strings.ToUpper(s), "_", "")
	return s == "REDBLACK"
}

// versioned follows Clouddriver: the manifest's annotation, else the
// description's versioned flag, else the kind's default.
func (o *deployOp) versioned(st strategy, gk schema.GroupKind) bool {
	if st.versioned != nil {
		return *st.versioned
	}
	return o.d.Versioned.or(versionedByDefault(gk))
}

// unbound fails when a required artifact was not substituted anywhere.
func unbound(field string, required, bound []Artifact) error {
	var missing []string
	for _, r := range required {
		if !slices.ContainsFunc(bound, func(b Artifact) bool { return b.key() == r.key() }) {
			missing = append(missing, fmt.Sprintf("%s %s", r.Type, r.Name))
		}
	}
	if len(missing) > 0 {
		return invalid(field, "the following required artifacts could not be bound: %s; check that the names used in the manifests match them",
			strings.Join(missing, ", "))
	}
	return nil
}

// annotateArtifact stores the artifact.spinnaker.io annotations on the
// object and its pod template, keeping values already there.
func annotateArtifact(obj map[string]any, a Artifact) {
	for _, ann := range annotationMaps(obj) {
		for k, v := range map[string]string{AnnotationArtifactType: a.Type, AnnotationArtifactName: a.Name,
			AnnotationArtifactLocation: a.Location, AnnotationArtifactVersion: a.Version} {
			if _, ok := ann[k]; !ok {
				ann[k] = v
			}
		}
	}
}

// applyMoniker is Clouddriver's namer: moniker annotations on the object
// and its pod template (kept when present), app.kubernetes.io/name (kept),
// app.kubernetes.io/managed-by and moniker.spinnaker.io/sequence
// (overwritten) labels on the object and, unless skipped, its pod template.
func applyMoniker(obj map[string]any, mon monikerDesc, skipTemplateLabels bool) {
	seq := ""
	if mon.Sequence.set {
		seq = strconv.FormatInt(mon.Sequence.v, 10)
	}
	for _, ann := range annotationMaps(obj) {
		storeIfAbsent(ann, AnnotationMonikerCluster, mon.Cluster)
		storeIfAbsent(ann, AnnotationMonikerApplication, mon.App)
		storeIfAbsent(ann, AnnotationMonikerStack, mon.Stack)
		storeIfAbsent(ann, AnnotationMonikerDetail, mon.Detail)
		storeIfAbsent(ann, AnnotationMonikerSequence, seq)
	}
	labels := []map[string]any{stringMapAt(obj, true, "metadata", "labels")}
	if t := podTemplate(obj); t != nil && !skipTemplateLabels {
		labels = append(labels, stringMapAt(t, true, "metadata", "labels"))
	}
	for _, l := range labels {
		storeIfAbsent(l, LabelName, mon.App)
		l[LabelManagedBy] = managedBySpinnaker
		if seq != "" {
			l[LabelMonikerSequence] = seq
		}
	}
}

// annotationMaps returns metadata.annotations and, for objects with a pod
// template, spec.template.metadata.annotations, creating them.
func annotationMaps(obj map[string]any) []map[string]any {
	out := []map[string]any{stringMapAt(obj, true, "metadata", "annotations")}
	if t := podTemplate(obj); t != nil {
		out = append(out, stringMapAt(t, true, "metadata", "annotations"))
	}
	return out
}
