package dynaccounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubesvc/kubesvc/internal/credentials"
)

// resolverCredentials implements Credentials with internal/credentials:
// secret references and file paths are stored as they are (they hold no
// secret); inline kubeconfig contents are sealed with the configured key,
// and refused without one.
type resolverCredentials struct {
	r *credentials.Resolver
}

// NewCredentials returns the Credentials of r (r.Sealer seals and opens
// inline contents; r.Client reads secret references).
func NewCredentials(r *credentials.Resolver) Credentials { return resolverCredentials{r: r} }

// source picks the credential field in effect, in the documented order of
// precedence, so a definition carrying several (as Clouddriver's do) is
// not refused.
func source(d Definition) credentials.Source {
	s := credentials.Source{Context: d.Context}
	switch {
	case d.KubeconfigContents != "":
		s.KubeconfigContents = d.KubeconfigContents
	case d.KubeconfigFile != "":
		s.KubeconfigFile = d.KubeconfigFile
	case d.KubeconfigAgent != "":
		s.KubeconfigAgent = d.KubeconfigAgent
	case d.ServiceAccount:
		s.ServiceAccount = true
	}
	return s
}

// Store checks every field of d that is stored as it is, not only the one
// in effect: a definition may carry several (Clouddriver's do), and all of
// them are kept in kubesvc_accounts.definition. Kubeconfig contents are
// refused in kubeconfigFile, kubeconfigAgent and unknown fields, and
// sealed in kubeconfigContents.
func (c resolverCredentials) Store(ctx context.Context, d Definition) (ref, sealed string, err error) {
	if err := credentials.CheckPathFields(credentials.Source{KubeconfigFile: d.KubeconfigFile, KubeconfigAgent: d.KubeconfigAgent}); err != nil {
		return "", "", err
	}
	if err := d.extraContent(""); err != nil {
		return "", "", err
	}
	src := source(d)
	switch {
	case src.KubeconfigContents != "" && !credentials.IsRef(src.KubeconfigContents):
		out, err := c.r.Sealer.SealSource(src)
		if err != nil {
			return "", "", err
		}
		return "kubeconfigContents (sealed)", out.KubeconfigContents, nil
	case src.KubeconfigContents != "":
		if _, err := credentials.ParseRef(src.KubeconfigContents); err != nil {
			return "", "", fmt.Errorf("%s: %w", credentials.FieldKubeconfigContents, err)
		}
		return src.KubeconfigContents, "", nil
	case src.KubeconfigFile != "":
		if credentials.IsRef(src.KubeconfigFile) {
			if _, err := credentials.ParseRef(src.KubeconfigFile); err != nil {
				return "", "", fmt.Errorf("%s: %w", credentials.FieldKubeconfigFile, err)
			}
		}
		return src.KubeconfigFile, "", nil
	case src.KubeconfigAgent != "":
		if credentials.IsRef(src.KubeconfigAgent) {
			if _, err := credentials.ParseRef(src.KubeconfigAgent); err != nil {
				return "", "", fmt.Errorf("%s: %w", credentials.FieldKubeconfigAgent, err)
			}
		}
		return "kubeconfigAgent:" + src.KubeconfigAgent, "", nil
	case src.ServiceAccount:
		return "serviceAccount", "", nil
	}
	return "", "", nil
}

func (c resolverCredentials) Resolve(ctx context.Context, d Definition, _, sealed string) ([]byte, error) {
	src := source(d)
	if sealed != "" {
		src = credentials.Source{KubeconfigContents: sealed, Context: d.Context}
	}
	creds, err := c.r.Resolve(ctx, src)
	if errors.Is(err, credentials.ErrNoCredentials) {
		return nil, errors.New("the account has no kubeconfigFile, kubeconfigContents, kubeconfigAgent or serviceAccount")
	}
	if err != nil {
		return nil, err
	}
	if creds.Kind == credentials.KindKubeconfig {
		return creds.Kubeconfig, nil
	}
	return nil, nil
}
