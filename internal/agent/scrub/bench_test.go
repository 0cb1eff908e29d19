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

// BenchmarkScrubObject measures the map path on an already decoded object
// (the decode itself, done by the caller, is outside the loop's cost but the
// per-iteration re-decode is excluded with StopTimer).
func BenchmarkScrubObject(b *testing.B) {
	for _, bc := range benchInputs(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON(bc.in); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				ScrubObject(u)
			}
		})
	}
}
