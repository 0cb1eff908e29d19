package credentials

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/clientcmd"
)

// ConfigError rewrites an error of clientcmd's ClientConfig about
// kubeconfig data without the data: clientcmd's messages name the
// contexts, clusters and users the kubeconfig defines and quote some of
// its values (a proxy-url, which may hold a password). Problems the
// control plane checks for are described as it does; clientcmd's other
// validation problems by kind (validationProblems), files the kubeconfig
// names by path. Errors about anything else are kept.
func ConfigError(data []byte, context string, err error) error {
	if strings.Contains(err.Error(), "error loading config file") {
		// The file changed after it was loaded here.
		return fmt.Errorf("%w: %s", ErrInvalidKubeconfig, DescribeLoadError(err))
	}
	if cerr := CheckKubeconfig(data, context); cerr != nil {
		return cerr
	}
	if !clientcmd.IsConfigurationInvalid(err) && !clientcmd.IsEmptyConfig(err) {
		return err
	}
	var problems []error
	if agg, ok := errors.AsType[utilerrors.Aggregate](err); ok {
		problems = utilerrors.Flatten(agg).Errors()
	}
	var says []string
	for _, p := range problems {
		d := "a problem clientcmd describes only by quoting the kubeconfig"
		for _, v := range validationProblems {
			if strings.HasPrefix(p.Error(), v.prefix) {
				d = v.says
				break
			}
		}
		if pe, ok := errors.AsType[*fs.PathError](p); ok {
			d = fmt.Sprintf("%s (%s: %v)", d, Redact(pe.Path), pe.Err)
		}
		if !slices.Contains(says, d) {
			says = append(says, d)
		}
	}
	if len(says) == 0 {
		return fmt.Errorf("%w: refused by clientcmd", ErrInvalidKubeconfig)
	}
	return fmt.Errorf("%w: %s", ErrInvalidKubeconfig, strings.Join(says, "; "))
}

// validationProblems are the kinds of problem clientcmd's validation
// reports (k8s.io/client-go/tools/clientcmd/validation.go), by the fixed
// start of its message, in words that quote nothing; the first match
// counts.
var validationProblems = []struct{ prefix, says string }{
	{"unable to read certificate-authority ", "a cluster's certificate-authority file cannot be read"},
	{"unable to read client-cert ", "a user's client-certificate file cannot be read"},
	{"unable to read client-key ", "a user's client-key file cannot be read"},
	{"invalid 'proxy-url'", "a cluster's proxy-url is not a valid URL"},
	{"certificate-authority-data and certificate-authority are both specified", "a cluster sets both certificate-authority-data and certificate-authority"},
	{"client-cert-data and client-cert are both specified", "a user sets both client-certificate-data and client-certificate"},
	{"client-key-data and client-key are both specified", "a user sets both client-key-data and client-key"},
	{"client-key-data or client-key must be specified", "a user with a client certificate has no client key"},
	{"authProvider cannot be provided in combination with an exec plugin", "a user sets both auth-provider and exec"},
	{"command must be specified", "a user's exec plugin has no command"},
	{"apiVersion must be specified", "a user's exec plugin has no apiVersion"},
	{"env variable name must be specified", "a user's exec plugin has an environment variable without a name"},
	{"interactiveMode must be specified", "a user's exec plugin has no interactiveMode"},
	{"invalid interactiveMode", "a user's exec plugin has an invalid interactiveMode"},
	{"allowlist misconfiguration", "the exec plugin allowlist is misconfigured"},
	{"more than one authentication method found", "a user has more than one authentication method"},
	{"requesting uid, groups or user-extra", "a user requests uid, groups or user-extra without impersonating a user"},
	{"empty context name", "a context has an empty name"},
	{"user was not specified for context", "a context names no user"},
	{"user ", "a context names a user that is not defined"},
	{"cluster was not specified for context", "a context names no cluster"},
	{"cluster has no server defined", "the cluster in use has no server"},
	{"cluster ", "a context names a cluster that is not defined"},
	{"namespace ", "a context's namespace is not a valid DNS label"},
	{"no server found for cluster", "a cluster has no server"},
	{"default cluster has no server defined", "the cluster in use has no server"},
	{"context was not found for specified context", "the context in use is not defined"},
	{"no context chosen", "no context is chosen: the kubeconfig has no current-context and the account sets no context"},
	{"no configuration has been provided", "the kubeconfig is empty"},
}
