package ops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubesvc/kubesvc/internal/agent/scrub"
)

// sensitiveResource is the dynamic client of a sensitive kind (a Secret).
// The API server's error messages can quote the object a request made or
// found, Secret values included (a patch that fails validation gets the
// whole patched object back in its 422), and an operation's error travels
// to the control plane, its history and logs. So every error of this
// client keeps its status (reason, code, the fields at fault), which the
// retries and callers decide on, and loses the server's message.
type sensitiveResource struct {
	dynamic.ResourceInterface
	gk schema.GroupKind
}

// sensitive wraps ri when objects of gvk are sensitive.
func sensitive(ri dynamic.ResourceInterface, gvk schema.GroupVersionKind) dynamic.ResourceInterface {
	if !scrub.IsSensitive(gvk.GroupVersion().String(), gvk.Kind) {
		return ri
	}
	return sensitiveResource{ResourceInterface: ri, gk: gvk.GroupKind()}
}

func (r sensitiveResource) Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions, sub ...string) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.Create(ctx, obj, opts, sub...)
	return out, r.redact(err)
}

func (r sensitiveResource) Update(ctx context.Context, obj *unstructured.Unstructured, opts metav1.UpdateOptions, sub ...string) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.Update(ctx, obj, opts, sub...)
	return out, r.redact(err)
}

func (r sensitiveResource) UpdateStatus(ctx context.Context, obj *unstructured.Unstructured, opts metav1.UpdateOptions) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.UpdateStatus(ctx, obj, opts)
	return out, r.redact(err)
}

func (r sensitiveResource) Delete(ctx context.Context, name string, opts metav1.DeleteOptions, sub ...string) error {
	return r.redact(r.ResourceInterface.Delete(ctx, name, opts, sub...))
}

func (r sensitiveResource) DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, list metav1.ListOptions) error {
	return r.redact(r.ResourceInterface.DeleteCollection(ctx, opts, list))
}

func (r sensitiveResource) Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.Get(ctx, name, opts, sub...)
	return out, r.redact(err)
}

func (r sensitiveResource) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	out, err := r.ResourceInterface.List(ctx, opts)
	return out, r.redact(err)
}

func (r sensitiveResource) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.Patch(ctx, name, pt, data, opts, sub...)
	return out, r.redact(err)
}

func (r sensitiveResource) Apply(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions, sub ...string) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.Apply(ctx, name, obj, opts, sub...)
	return out, r.redact(err)
}

func (r sensitiveResource) ApplyStatus(ctx context.Context, name string, obj *unstructured.Unstructured, opts metav1.ApplyOptions) (*unstructured.Unstructured, error) {
	out, err := r.ResourceInterface.ApplyStatus(ctx, name, obj, opts)
	return out, r.redact(err)
}

// redact returns err without anything that could quote the object: an API
// status keeps its reason, code, details and causes' fields and types; a
// transport or context error is kept; anything else becomes its type.
func (r sensitiveResource) redact(err error) error {
	if err == nil {
		return nil
	}
	kind := r.gk.Kind
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		var fields []string
		if d := s.Details; d != nil {
			dc := *d
			dc.Causes = make([]metav1.StatusCause, len(d.Causes))
			for i, c := range d.Causes {
				dc.Causes[i] = metav1.StatusCause{Type: c.Type, Field: c.Field}
				if c.Field != "" {
					fields = append(fields, fmt.Sprintf("%s (%s)", c.Field, c.Type))
				}
			}
			s.Details = &dc
		}
		reason := string(s.Reason)
		if reason == "" {
			reason = "Unknown"
		}
		msg := fmt.Sprintf("the API server refused the request: %s (HTTP %d)", reason, s.Code)
		if len(fields) > 0 {
			msg += ", fields: " + strings.Join(fields, ", ")
		}
		s.Message = msg + "; its message is withheld, as it may quote " + kind + " data"
		return &apierrors.StatusError{ErrStatus: s}
	}
	var ue *url.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("request on a %s failed (%T); the error is withheld, as it may quote %s data", kind, err, kind)
}

// secretValuePaths are the JSON pointers of a sensitive object's values:
// data, stringData, and the last-applied annotation, which holds the whole
// object as last applied (the scrubber cleans it in place, not a copy of
// it elsewhere).
var secretValuePaths = []string{"/data", "/stringData", "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"}

// checkSensitivePatch refuses, on a sensitive kind, JSON patch operations
// that would read its values: copy or move from them (into an annotation
// or label, which is not scrubbed, then back to the caller in the result
// and the cache) and test against them (an oracle, one guess at a time).
func checkSensitivePatch(gk schema.GroupKind, ops []any) error {
	for i, x := range ops {
		op, _ := x.(map[string]any)
		name, _ := op["op"].(string)
		field, ptr := "", ""
		switch strings.ToLower(name) {
		case "copy", "move":
			field = "from"
			ptr, _ = op["from"].(string)
		case "test":
			field = "path"
			ptr, _ = op["path"].(string)
		default:
			continue
		}
		for _, p := range secretValuePaths {
			// "" is the whole object; "/metadata" and "/metadata/annotations"
			// hold the annotation.
			if ptr == p || strings.HasPrefix(ptr, p+"/") || strings.HasPrefix(p, ptr+"/") || ptr == "" {
				return invalid(fmt.Sprintf("patchBody[%d].%s", i, field),
					"a %s patch may not %s %s: the values of a %s never leave the agent", KindName(gk), name, ptr, gk.Kind)
			}
		}
	}
	return nil
}
