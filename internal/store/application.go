package store

// Where ApplicationOf looks for the Spinnaker application of an object.
const (
	applicationAnnotation = "moniker.spinnaker.io/application"
	applicationNameLabel  = "app.kubernetes.io/name"
)

// ApplicationOf returns the Spinnaker application of an object: its
// moniker.spinnaker.io/application annotation, else its
// app.kubernetes.io/name label, else "".
func ApplicationOf(annotations, labels map[string]string) string {
	if app := annotations[applicationAnnotation]; app != "" {
		return app
	}
	return labels[applicationNameLabel]
}
