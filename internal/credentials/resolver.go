package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The names of the credential fields, as the Dynamic Accounts API spells
// them; errors start with them.
const (
	FieldKubeconfigFile     = "kubeconfigFile"
	FieldKubeconfigContents = "kubeconfigContents"
	FieldKubeconfigAgent    = "kubeconfigAgent"
	FieldServiceAccount     = "serviceAccount"
	FieldContext            = "context"
)

// DefaultMaxBytes bounds the size of a kubeconfig when Resolver.MaxBytes is
// zero: the size limit of a Kubernetes Secret.
const DefaultMaxBytes = 1 << 20

var (
	// ErrNoCredentials: none of the credential fields is set.
	ErrNoCredentials = errors.New("no credentials: set one of kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount")
	// ErrAmbiguousCredentials: more than one credential field is set.
	ErrAmbiguousCredentials = errors.New("set exactly one of kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount")
)

// Source is an account's credential fields, as received or as stored.
type Source struct {
	// KubeconfigFile is a secret reference or a path on the control plane.
	KubeconfigFile string
	// KubeconfigContents is an inline kubeconfig, a secret reference, or
	// inline contents sealed by a Sealer.
	KubeconfigContents string
	// KubeconfigAgent is a path or reference the agent resolves itself.
	KubeconfigAgent string
	// ServiceAccount selects the agent's own service account.
	ServiceAccount bool
	// Context is the account's context field: the kubeconfig context to
	// use instead of current-context. Not a credential field; checked
	// against the resolved kubeconfig.
	Context string
}

// Kind says what Credentials hold.
type Kind int

const (
	// KindKubeconfig: Credentials.Kubeconfig holds the kubeconfig, resolved
	// and checked by the control plane.
	KindKubeconfig Kind = iota + 1
	// KindAgentKubeconfig: Credentials.AgentKubeconfig is a path or
	// reference for the agent to resolve, passed through unchecked.
	KindAgentKubeconfig
	// KindServiceAccount: the agent uses its own service account.
	KindServiceAccount
)

func (k Kind) String() string {
	switch k {
	case KindKubeconfig:
		return "kubeconfig"
	case KindAgentKubeconfig:
		return "agent kubeconfig"
	case KindServiceAccount:
		return "service account"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Credentials are an account's resolved credentials. They print redacted
// (fmt verbs %v, %+v, %#v and %s, and slog): never the kubeconfig.
type Credentials struct {
	Kind Kind
	// Field is the credential field they come from.
	Field string
	// Origin describes where they come from without revealing them: the
	// secret reference, the path, "inline, N bytes", ...
	Origin string
	// Kubeconfig is the kubeconfig (KindKubeconfig only).
	Kubeconfig []byte
	// AgentKubeconfig is the path or reference for the agent
	// (KindAgentKubeconfig only).
	AgentKubeconfig string
}

// KubeconfigBase64 returns the kubeconfig base64-encoded, as it is sent to
// the agent; empty unless Kind is KindKubeconfig.
func (c Credentials) KubeconfigBase64() string {
	if c.Kind != KindKubeconfig {
		return ""
	}
	return base64.StdEncoding.EncodeToString(c.Kubeconfig)
}

// String describes the credentials without revealing them.
func (c Credentials) String() string {
	switch c.Kind {
	case KindKubeconfig:
		return fmt.Sprintf("%s (%s): kubeconfig, %d bytes", c.Field, c.Origin, len(c.Kubeconfig))
	case KindAgentKubeconfig:
		return fmt.Sprintf("%s (%s): resolved by the agent", c.Field, c.Origin)
	case KindServiceAccount:
		return "serviceAccount: the agent's service account"
	}
	return "no credentials"
}

// GoString is String, so that %#v does not print the kubeconfig either.
func (c Credentials) GoString() string { return c.String() }

// LogValue is String, for log/slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Error is the error of a credential field: Field and Origin say which
// value (never the value itself), Err what is wrong with it.
type Error struct {
	// Field is the credential field; empty for an error about the
	// combination of fields.
	Field string
	// Origin is where the value comes from, redacted (see Credentials).
	Origin string
	Err    error
}

func (e *Error) Error() string {
	switch {
	case e.Field == "":
		return e.Err.Error()
	case e.Origin == "":
		return e.Field + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s (%s): %v", e.Field, e.Origin, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Resolver resolves credential fields into Credentials. The zero value
// resolves files, inline contents, kubeconfigAgent and serviceAccount;
// secret references need Client and sealed contents need Sealer. A Resolver
// is safe for concurrent use.
type Resolver struct {
	// Client reads the Secrets that secret references name; it needs get
	// on secrets in their namespaces.
	Client kubernetes.Interface
	// Namespace is the namespace of references without ns:, normally the
	// control plane's own.
	Namespace string
	// Sealer opens sealed kubeconfigContents (as SealSource stores them).
	Sealer *Sealer
	// MaxBytes bounds a kubeconfig's size; 0 means DefaultMaxBytes.
	MaxBytes int
}

func (r *Resolver) maxBytes() int {
	if r.MaxBytes > 0 {
		return r.MaxBytes
	}
	return DefaultMaxBytes
}

// Resolve checks that exactly one credential field of src is set and
// resolves it: secret references through the Kubernetes API, paths from the
// filesystem, inline and sealed contents as they are; the resulting
// kubeconfig is checked (see Credentials). kubeconfigAgent is returned
// unresolved and serviceAccount as such. Errors are *Error naming the field
// (none for errors about the combination of fields, or when ctx is done)
// and the value's origin, never its content, and wrap what went wrong
// (ErrInvalidRef, ErrInvalidKubeconfig, ErrTampered, a *KeyMismatchError,
// fs.ErrNotExist, an API status error, ctx's error, ...).
func (r *Resolver) Resolve(ctx context.Context, src Source) (Credentials, error) {
	if err := ctx.Err(); err != nil {
		return Credentials{}, &Error{Err: err}
	}
	file, agent := strings.TrimSpace(src.KubeconfigFile), strings.TrimSpace(src.KubeconfigAgent)
	contents := src.KubeconfigContents
	var set []string
	if file != "" {
		set = append(set, FieldKubeconfigFile)
	}
	if strings.TrimSpace(contents) != "" {
		set = append(set, FieldKubeconfigContents)
	}
	if agent != "" {
		set = append(set, FieldKubeconfigAgent)
	}
	if src.ServiceAccount {
		set = append(set, FieldServiceAccount)
	}
	switch {
	case len(set) == 0:
		return Credentials{}, &Error{Err: ErrNoCredentials}
	case len(set) > 1:
		return Credentials{}, &Error{Err: fmt.Errorf("%w; %s are set", ErrAmbiguousCredentials, strings.Join(set, " and "))}
	}

	switch set[0] {
	case FieldServiceAccount:
		if src.Context != "" {
			return Credentials{}, &Error{Field: FieldContext, Err: errors.New("applies to kubeconfigs only, not to serviceAccount")}
		}
		return Credentials{Kind: KindServiceAccount, Field: FieldServiceAccount, Origin: "the agent's service account"}, nil

	case FieldKubeconfigAgent:
		if LooksLikeContent(agent) {
			return Credentials{}, &Error{Field: FieldKubeconfigAgent, Origin: inlineOrigin(agent), Err: errContentInPathField(FieldKubeconfigAgent)}
		}
		if IsRef(agent) {
			if _, err := ParseRef(agent); err != nil {
				return Credentials{}, &Error{Field: FieldKubeconfigAgent, Err: err}
			}
		}
		return Credentials{Kind: KindAgentKubeconfig, Field: FieldKubeconfigAgent, Origin: Redact(agent), AgentKubeconfig: agent}, nil

	case FieldKubeconfigFile:
		switch {
		case IsRef(file):
			return r.resolveRef(ctx, FieldKubeconfigFile, file, src.Context)
		case LooksLikeContent(file):
			return Credentials{}, &Error{Field: FieldKubeconfigFile, Origin: inlineOrigin(file), Err: errContentInPathField(FieldKubeconfigFile)}
		}
		origin := "file " + Redact(file)
		data, err := r.readFile(ctx, file)
		if err != nil {
			return Credentials{}, &Error{Field: FieldKubeconfigFile, Origin: origin, Err: err}
		}
		return r.check(FieldKubeconfigFile, origin, data, src.Context)

	default: // FieldKubeconfigContents
		switch t := strings.TrimSpace(contents); {
		case IsRef(t):
			return r.resolveRef(ctx, FieldKubeconfigContents, t, src.Context)
		case IsSealed(t):
			origin := Redact(t)
			if id, err := SealedKeyID(t); err == nil {
				origin = fmt.Sprintf("sealed with key %s, %d bytes", id, len(t))
			}
			data, err := r.Sealer.Open(t)
			if err != nil {
				if km := (*KeyMismatchError)(nil); errors.As(err, &km) {
					origin = fmt.Sprintf("sealed, %d bytes", len(t)) // the error names the key
				}
				return Credentials{}, &Error{Field: FieldKubeconfigContents, Origin: origin, Err: err}
			}
			return r.check(FieldKubeconfigContents, origin, data, src.Context)
		}
		origin := inlineOrigin(contents)
		if len(contents) > r.maxBytes() {
			return Credentials{}, &Error{Field: FieldKubeconfigContents, Origin: origin, Err: r.tooLarge()}
		}
		return r.check(FieldKubeconfigContents, origin, []byte(contents), src.Context)
	}
}

func (r *Resolver) resolveRef(ctx context.Context, field, s, contextName string) (Credentials, error) {
	ref, err := ParseRef(s)
	if err != nil {
		return Credentials{}, &Error{Field: field, Err: err}
	}
	data, err := r.ReadSecret(ctx, ref)
	if err != nil {
		return Credentials{}, &Error{Field: field, Origin: ref.String(), Err: err}
	}
	return r.check(field, ref.String(), data, contextName)
}

func (r *Resolver) check(field, origin string, data []byte, contextName string) (Credentials, error) {
	if err := checkKubeconfig(data, contextName); err != nil {
		return Credentials{}, &Error{Field: field, Origin: origin, Err: err}
	}
	return Credentials{Kind: KindKubeconfig, Field: field, Origin: origin, Kubeconfig: data}, nil
}

// ReadSecret returns the value of the Secret key ref names, read through
// Client; a reference without a namespace uses Namespace. The value is not
// checked. Errors name the Secret and key, and wrap the API's status error
// (apierrors.IsNotFound, IsForbidden, ...) or ctx's error.
func (r *Resolver) ReadSecret(ctx context.Context, ref Ref) ([]byte, error) {
	if r.Client == nil {
		return nil, errors.New("no Kubernetes client is configured to read secret references")
	}
	ns := ref.Namespace
	if ns == "" {
		ns = r.Namespace
	}
	if ns == "" {
		return nil, errors.New("the reference has no ns: and no default namespace is configured")
	}
	secret, err := r.Client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("secret %s/%s not found: %w", ns, ref.Name, err)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("the control plane may not read secret %s/%s (it needs get on secrets in namespace %s): %w", ns, ref.Name, ns, err)
	case err != nil:
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, fmt.Errorf("reading secret %s/%s: %w", ns, ref.Name, err)
	}
	v, ok := secret.Data[ref.Key]
	switch {
	case !ok:
		keys := slices.Sorted(maps.Keys(secret.Data))
		have := "no keys"
		if len(keys) > 0 {
			have = "it has: " + strings.Join(keys, ", ")
		}
		return nil, fmt.Errorf("secret %s/%s has no key %q (%s)", ns, ref.Name, ref.Key, have)
	case len(v) == 0:
		return nil, fmt.Errorf("key %q of secret %s/%s is empty", ref.Key, ns, ref.Name)
	case len(v) > r.maxBytes():
		return nil, fmt.Errorf("key %q of secret %s/%s: %w", ref.Key, ns, ref.Name, r.tooLarge())
	}
	return v, nil
}

// readFile reads a regular file of at most maxBytes. Errors leave out the
// path (the caller's Origin has it) and wrap the fs error (fs.ErrNotExist,
// fs.ErrPermission). ctx is checked before and after: a read of a regular
// file cannot be interrupted, and FIFOs and devices are refused.
func (r *Resolver) readFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", unwrapPath(err))
	}
	switch {
	case st.IsDir():
		return nil, errors.New("is a directory, not a kubeconfig file")
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("is not a regular file but a %s", fileType(st.Mode()))
	case st.Size() > int64(r.maxBytes()):
		return nil, r.tooLarge()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(r.maxBytes())+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", unwrapPath(err))
	}
	if len(data) > r.maxBytes() {
		return nil, r.tooLarge()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return data, nil
}

func (r *Resolver) tooLarge() error {
	return fmt.Errorf("larger than %d bytes, too large for a kubeconfig", r.maxBytes())
}

// unwrapPath drops the path from an *fs.PathError: the caller names the
// file itself, redacted if need be.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

func inlineOrigin(s string) string { return fmt.Sprintf("inline, %d bytes", len(s)) }

func errContentInPathField(field string) error {
	if field == FieldKubeconfigAgent {
		return errors.New("holds kubeconfig contents, not a path or secret reference on the agent; send contents in kubeconfigContents")
	}
	return errors.New("holds kubeconfig contents, not a path or secret reference; send contents in kubeconfigContents")
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
