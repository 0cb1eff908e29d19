package scrub

import (
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func benchInputs(b *testing.B) []struct {
	name string
	in   []byte
} {
	dep, err := os.ReadFile("testdata/deployment.json")
	if err != nil {
		b.Fatal(err)
	}
	depNoMF, err := ScrubJSON(dep)
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		in   []byte
	}{
		{"deployment", dep},                      // ~3.9 KB from the API server, managedFields dropped
		{"deployment-no-managedFields", depNoMF}, // ~2.4 KB, nothing to change
		{"secret", secretJSON(b)},                // decode, scrub, re-encode
	}
}

func BenchmarkScrubJSON(b *testing.B) {
	for _, bc := range benchInputs(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ScrubJSON(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScrubObject measures the map path on a decoded object. Each
// iteration scrubs a fresh DeepCopy (scrubbing is in place); the
// "copy-only" runs measure that copy alone, to subtract.
func BenchmarkScrubObject(b *testing.B) {
	for _, bc := range benchInputs(b) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(bc.in); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ScrubObject(u.DeepCopy())
			}
		})
		b.Run(bc.name+"/copy-only", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = u.DeepCopy()
			}
		})
	}
}
