package ops

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

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
	// A reason with ": " in it, after a short value, is left whole; text
	// wrapped after the API's message stays.
	rule := fmt.Errorf("%w (retry abandoned: context deadline exceeded)", apierrors.NewInvalid(schema.GroupKind{Group: "example.com", Kind: "Widget"}, "w", field.ErrorList{
		field.Invalid(field.NewPath("spec"), "object", "validation rule: "+strings.Repeat("self.replicas <= self.max && ", 20)+"true: the replica count must not exceed max"),
	}))
	if msg := shorten(rule).Error(); !strings.Contains(msg, `Invalid value: "object": validation rule: self.replicas`) || !strings.HasSuffix(msg, "(retry abandoned: context deadline exceeded)") {
		t.Errorf("rule: %s", msg)
	}
	small := apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "y", field.ErrorList{field.Invalid(field.NewPath("data"), "z", "bad")})
	if shorten(small) != error(small) {
		t.Errorf("a short error was rewritten: %v", shorten(small))
	}
}

// A typed patch error is cut on a character boundary: the message goes
// into a protobuf string, which must be UTF-8.
func TestShortenTypedPatchErrorKeepsUTF8(t *testing.T) {
	for pad := range 2 {
		msg := "failed to create typed patch object (ns/c; /v1, Kind=ConfigMap): " + strings.Repeat("x", pad) + strings.Repeat("é", 2000)
		got := shorten(apierrors.NewInternalError(errors.New(msg))).Error()
		if !utf8.ValidString(got) || !strings.Contains(got, "bytes elided") || len(got) > maxTypedPatchMessage+200 {
			t.Errorf("pad %d: %d bytes, valid UTF-8 %v: %.80q", pad, len(got), utf8.ValidString(got), got[max(len(got)-80, 0):])
		}
	}
}
