// Package helm holds no code: deploy/helm's Helm charts (kubesvc-controlplane,
// kubesvc-agent) and their tests. charts_test.go renders each chart with
// the pinned helm (scripts/helm.sh), loads the configuration files it
// renders with the binaries' own loaders, checks that every file they name
// is mounted, applies the objects to a real kube-apiserver and asks it what
// the service accounts may do.
package helm
