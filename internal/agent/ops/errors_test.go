package ops

import (
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// An Invalid error quoting a whole object keeps the field and the reason
// and elides the value; it still is an Invalid error; short ones are kept.
func TestShortenElidesLongValues(t *testing.T) {
	big := map[string]any{"spec": strings.Repeat("x", 3000)}
	err := fmt.Errorf("apply Job x: %w", apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", field.ErrorList{
		field.Invalid(field.NewPath("spec", "template"), big, "field is immutable"),
		field.Required(field.NewPath("spec", "selector"), ""),
	}))
	got := shorten(err)
	msg := got.Error()
	if !strings.HasPrefix(msg, `apply Job x: Job.batch "x" is invalid: spec.template: Invalid value (`) ||
		!strings.Contains(msg, "bytes, elided): field is immutable; spec.selector: Required value") || len(msg) > 300 {
		t.Errorf("shortened: %s", msg)
	}
	if !apierrors.IsInvalid(got) {
		t.Error("the shortened error is no longer Invalid")
	}
	small := apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "y", field.ErrorList{field.Invalid(field.NewPath("data"), "z", "bad")})
	if shorten(small) != error(small) {
		t.Errorf("a short error was rewritten: %v", shorten(small))
	}
}
