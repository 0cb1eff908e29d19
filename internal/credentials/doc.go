// Package credentials turns a dynamic account's credential fields into what
// the agent needs to reach the account's cluster, keeps inline kubeconfig
// contents encrypted at rest, and keeps secrets out of logs and errors.
//
// An account names its credentials with exactly one of four fields, as in
// the Armory Scale Agent's Dynamic Accounts API:
//
//   - kubeconfigFile: a Spinnaker secret reference to a Kubernetes Secret
//     (encryptedFile:k8s!n:NAME!k:KEY!ns:NS), or a path on the control
//     plane's filesystem;
//   - kubeconfigContents: the kubeconfig itself (YAML or JSON), a secret
//     reference, or the sealed form of inline contents as stored;
//   - kubeconfigAgent: a path or reference that only the agent can resolve;
//     the control plane passes it through unchanged;
//   - serviceAccount: the agent's own service account, no kubeconfig.
//
// Resolver.Resolve reads the Secret (through a client-go clientset; the
// ns: parameter defaults to the resolver's namespace) or the file, checks
// that the result is a usable kubeconfig (clientcmd.Load, then a context
// with a cluster and a server) and returns Credentials; the control plane
// sends Credentials.Kubeconfig base64-encoded to the agent. Errors name the
// field and where the value came from, never the value:
//
//	kubeconfigFile (encryptedFile:k8s!n:prod!k:config!ns:spinnaker): secret spinnaker/prod has no key "config" (it has: kubeconfig)
//	kubeconfigContents (inline, 1843 bytes): invalid kubeconfig: YAML syntax error at line 6: did not find expected key
//
// Secret references and file paths contain no secret and may be stored as
// they are. Inline contents may not: Sealer encrypts them with AES-256-GCM
// into a self-describing string, sealed:v1:KEYID:BASE64, where KEYID is a
// short hash of the key, so that a value sealed with another key is reported
// as such. Several keys may be configured for key rotation: the first seals,
// all open. Without a key, Seal returns ErrNoKey, and callers refuse to
// store inline contents rather than store them in plain text.
//
// Redact prints a field value for logs: references and paths as they are,
// anything that may be kubeconfig contents or a token as "<redacted N
// bytes>". Credentials print the same way with %v, %+v, %#v and slog.
//
// Supported is the k8s engine of Spinnaker's secret references only (the
// engine that needs no cloud credentials besides the control plane's own
// service account); references to other engines (s3, gcs, vault,
// secrets-manager) are rejected with an error naming the engine. Both
// reference forms resolve to the Secret value's bytes: encryptedFile: says
// the value is a file and encrypted: that it is a string, and a kubeconfig
// is the same either way.
//
// The package starts no goroutines and has no globals besides fixed tables.
package credentials
