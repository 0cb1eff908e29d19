package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var (
	gkDeployment  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkStatefulSet = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	gkDaemonSet   = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
)

// rolloutOp is pauseRolloutManifest, resumeRolloutManifest or
// rollingRestartManifest: one target, no other fields.
type rolloutOp struct {
	op string
	t  target
}

func parseRollout(op string) func([]byte) (operation, error) {
	return func(payload []byte) (operation, error) {
		var d targetDesc
		if err := decodeDescription(payload, &d); err != nil {
			return nil, err
		}
		t, err := parseTarget(d.ManifestName, d.Location)
		if err != nil {
			return nil, err
		}
		return &rolloutOp{op: op, t: t}, nil
	}
}

func (o *rolloutOp) check(ctx context.Context, e *Executor) error {
	if err := o.t.resolve(ctx, e); err != nil {
		return err
	}
	gk := o.t.gk()
	switch {
	case o.op == OpRollingRestartManifest && (gk == gkDeployment || gk == gkStatefulSet || gk == gkDaemonSet):
	case gk == gkDeployment:
	default:
		return invalid("manifestName", "%s does not support %s", KindName(gk), o.op)
	}
	return nil
}

// run pauses or resumes a Deployment (spec.paused), or restarts a
// Deployment, StatefulSet or DaemonSet the way kubectl rollout restart does
// (a kubectl.kubernetes.io/restartedAt pod template annotation).
func (o *rolloutOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	var body string
	switch o.op {
	case OpPauseRolloutManifest:
		body = `{"spec":{"paused":true}}`
	case OpResumeRolloutManifest:
		body = `{"spec":{"paused":false}}`
	default:
		cur, err := e.get(ctx, &o.t)
		if err != nil {
			return Result{}, err
		}
		if pausedSpec(cur.Object) {
			return Result{}, fmt.Errorf("cannot restart paused %s: resume it first", o.t.String())
		}
		body = fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`,
			AnnotationRestartedAt, e.opts.Now().Format(time.RFC3339))
	}
	out, err := e.patch(ctx, &o.t, types.StrategicMergePatchType, []byte(body))
	if err != nil {
		return Result{}, err
	}
	var res Result
	res.addObject(o.t.gk(), out)
	return res, nil
}

func pausedSpec(obj map[string]any) bool {
	b, _ := stringMapAt(obj, false, "spec")["paused"].(bool)
	return b
}

// undoDesc is Clouddriver's KubernetesUndoRolloutManifestDescription.
type undoDesc struct {
	targetDesc
	Revision         optInt `json:"revision"`
	NumRevisionsBack optInt `json:"numRevisionsBack"`
}

type undoOp struct {
	d undoDesc
	t target
}

func parseUndo(payload []byte) (operation, error) {
	var d undoDesc
	if err := decodeDescription(payload, &d); err != nil {
		return nil, err
	}
	t, err := parseTarget(d.ManifestName, d.Location)
	if err != nil {
		return nil, err
	}
	if d.Revision.set && d.Revision.v <= 0 {
		return nil, invalid("revision", "must be a positive revision number, got %d", d.Revision.v)
	}
	if d.NumRevisionsBack.set && d.NumRevisionsBack.v < 0 {
		return nil, invalid("numRevisionsBack", "must not be negative, got %d", d.NumRevisionsBack.v)
	}
	return &undoOp{d: d, t: t}, nil
}

func (o *undoOp) check(ctx context.Context, e *Executor) error {
	if err := o.t.resolve(ctx, e); err != nil {
		return err
	}
	if gk := o.t.gk(); gk != gkDeployment && gk != gkStatefulSet && gk != gkDaemonSet {
		return invalid("manifestName", "%s does not support undo rollout", KindName(gk))
	}
	return nil
}

// run rolls the target back like kubectl rollout undo. The revision is
// revision, else the one numRevisionsBack before the newest (Clouddriver:
// sorted history, index len-1-numRevisionsBack), else the previous one.
// Deployments get the pod template (without pod-template-hash) and
// annotations of the ReplicaSet of that revision; StatefulSets and
// DaemonSets get the ControllerRevision's patch.
func (o *undoOp) run(ctx context.Context, e *Executor) (Result, error) {
	if err := o.check(ctx, e); err != nil {
		return Result{}, err
	}
	obj, err := e.get(ctx, &o.t)
	if err != nil {
		return Result{}, err
	}
	hist, err := e.history(ctx, &o.t, obj.GetUID())
	if err != nil {
		return Result{}, err
	}
	revs := make([]int64, 0, len(hist))
	for r := range hist {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	var to int64
	switch {
	case o.d.NumRevisionsBack.set:
		i := len(revs) - 1 - int(o.d.NumRevisionsBack.v)
		if i < 0 {
			return Result{}, fmt.Errorf("%s has %d revision(s) in total, cannot roll back %d", o.t.String(), len(revs), o.d.NumRevisionsBack.v)
		}
		to = revs[i]
	case o.d.Revision.set:
		to = o.d.Revision.v
	default:
		if len(revs) < 2 {
			return Result{}, fmt.Errorf("no rollout history found for %s: nothing to roll back to", o.t.String())
		}
		to = revs[len(revs)-2]
	}
	patch, ok := hist[to]
	if !ok {
		return Result{}, fmt.Errorf("revision %d of %s not found (revisions: %v)", to, o.t.String(), revs)
	}
	if o.t.gk() == gkDeployment {
		if pausedSpec(obj.Object) {
			return Result{}, fmt.Errorf("cannot roll back paused %s: resume it first", o.t.String())
		}
	}
	pt := types.StrategicMergePatchType
	if o.t.gk() == gkDeployment {
		pt = types.JSONPatchType
	}
	if patch == nil { // already at that revision
		var res Result
		res.addObject(o.t.gk(), obj)
		return res, nil
	}
	out, err := e.patch(ctx, &o.t, pt, patch)
	if err != nil {
		return Result{}, fmt.Errorf("restore revision %d: %w", to, err)
	}
	var res Result
	res.addObject(o.t.gk(), out)
	return res, nil
}

// history maps each revision of the target to the patch restoring it (nil
// when the target already matches it).
func (e *Executor) history(ctx context.Context, t *target, uid types.UID) (map[int64][]byte, error) {
	hist := map[int64][]byte{}
	if t.gk() != gkDeployment {
		var list *appsv1.ControllerRevisionList
		err := e.do(ctx, "list controller revisions", func(ctx context.Context) (err error) {
			list, err = e.kube.AppsV1().ControllerRevisions(t.namespace).List(ctx, metav1.ListOptions{})
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			if c := metav1.GetControllerOfNoCopy(&list.Items[i]); c != nil && c.UID == uid {
				hist[list.Items[i].Revision] = list.Items[i].Data.Raw
			}
		}
		return hist, nil
	}
	var (
		dep *appsv1.Deployment
		rss *appsv1.ReplicaSetList
	)
	err := e.do(ctx, "read rollout history", func(ctx context.Context) (err error) {
		if dep, err = e.kube.AppsV1().Deployments(t.namespace).Get(ctx, t.name, metav1.GetOptions{}); err != nil {
			return err
		}
		rss, err = e.kube.AppsV1().ReplicaSets(t.namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range rss.Items {
		rs := &rss.Items[i]
		c := metav1.GetControllerOfNoCopy(rs)
		rev, err := strconv.ParseInt(rs.Annotations[AnnotationRevision], 10, 64)
		if c == nil || c.UID != uid || err != nil {
			continue
		}
		tmpl := rs.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		if apiequality.Semantic.DeepEqual(tmpl, &dep.Spec.Template) {
			hist[rev] = nil
			continue
		}
		ann := map[string]string{}
		for k, v := range dep.Annotations {
			if skipRollbackAnnotation[k] {
				ann[k] = v
			}
		}
		for k, v := range rs.Annotations {
			if !skipRollbackAnnotation[k] {
				ann[k] = v
			}
		}
		hist[rev], err = json.Marshal([]map[string]any{
			{"op": "replace", "path": "/spec/template", "value": tmpl},
			{"op": "replace", "path": "/metadata/annotations", "value": ann},
		})
		if err != nil {
			return nil, permanent{err}
		}
	}
	return hist, nil
}

// skipRollbackAnnotation are the annotations kubectl keeps from the
// Deployment rather than copying them from the ReplicaSet.
var skipRollbackAnnotation = map[string]bool{
	AnnotationLastApplied:                       true,
	AnnotationRevision:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	"deprecated.deployment.rollback.to":         true,
}
