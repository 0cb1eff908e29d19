package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// What client-go follows by itself, and what followConfig adds:
//
//   - a tokenFile (and the in-cluster service account's projected token,
//     rest.InClusterConfig's BearerTokenFile) is read again every minute,
//     and at once after a 401;
//   - client-certificate and client-key files (both files, no data) are
//     read again on each new connection, and connections made with the old
//     certificate are closed when it changes;
//   - exec plugins and auth providers refresh their own credentials.
//
// A kubeconfig file itself is read once by client-go, and the in-cluster
// service account's CA file (ca.crt) every five minutes at most.
// followConfig reads the account's kubeconfig file (or the service
// account's CA file) again when the API server refuses the credentials
// (401, 403), the agent refuses the server's certificate, or the server
// cannot be reached (connection refused, name not resolved, TLS handshake
// failed), and the account's runner has it read again every
// kubeconfigPollEvery (refresh) while nothing fails. When its content (or that of a file it names) changed, that
// request is sent again and the following ones with the new credentials.
// Clients, watches and their resource versions stay: no list again.
//
// A kubeconfig file that now names another API server may name another
// cluster: other resource versions, other kinds. The clients keep the
// server they were built for, and the agent is told (serverMoved): it
// restarts the account, as after an edit of the account.

// kubeconfigPollEvery is how often an account's kubeconfig file (or the
// service account's CA file) is read again while every request succeeds.
const kubeconfigPollEvery = time.Minute

// kubeconfigCheckEvery bounds how often a kubeconfig file is read again:
// a revoked token fails every stream of the account at once.
const kubeconfigCheckEvery = 250 * time.Millisecond

// serverMoved is told that acct's kubeconfig file, as the clients built
// for acct loaded it with API server from, now names API server to.
type serverMoved func(acct Account, from, to string)

// configSource is an account's credential source (its kubeconfig file,
// or the in-cluster service account's CA file) as last loaded for the
// clients built from one restConfig (and its copies).
type configSource struct {
	acct  Account
	log   *slog.Logger // the account's
	moved serverMoved  // nil: a server change is logged only

	mu      sync.Mutex
	checked time.Time    // when the file was last read
	sum     [32]byte     // fingerprint of what cfg was loaded from
	cfg     *rest.Config // as loaded (no WrapTransport)
	gen     int          // incremented when cfg changes; 0: as restConfig built it
	problem string       // the last problem logged, not logged again
}

// followConfig makes the clients built from cfg, the configuration of a's
// kubeconfig file or in-cluster service account, follow changes of the
// file, logging them on log and telling moved when the kubeconfig file
// names another API server. It returns what they follow (nil: nothing).
func followConfig(a Account, cfg *rest.Config, log *slog.Logger, moved serverMoved) *configSource {
	src := &configSource{acct: a, log: log, moved: moved, cfg: rest.CopyConfig(cfg), checked: time.Now()}
	sum, err := src.fingerprint(cfg)
	if err != nil {
		return nil // a file gone since it was loaded: the next load says so
	}
	src.sum = sum
	wrap := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return &reloadingTransport{src: src, base: rt, http1: http1Only(rt)}
	}
	return src
}

// fingerprint hashes what the source follows for cfg: the kubeconfig file
// and the files it names (certificates, keys, token), or the service
// account's CA file (client-go follows its token; its API server comes
// from the environment).
func (s *configSource) fingerprint(cfg *rest.Config) ([32]byte, error) {
	if s.acct.ServiceAccount {
		return filesFingerprint(s.acct.inClusterFiles().caFile)
	}
	return filesFingerprint(s.acct.KubeconfigFile, cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.BearerTokenFile)
}

// filesFingerprint hashes the files of paths ("" skipped).
func filesFingerprint(paths ...string) ([32]byte, error) {
	h := sha256.New()
	for _, p := range paths {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// current returns the source's configuration and its generation.
func (s *configSource) current() (int, *rest.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, s.cfg
}

// refresh reads the file again, unless it was read moments ago, and
// returns the configuration then current and its generation.
func (s *configSource) refresh() (int, *rest.Config) {
	s.mu.Lock()
	gen, cfg, moved := s.refreshLocked()
	s.mu.Unlock()
	if moved != nil {
		moved()
	}
	return gen, cfg
}

// refreshLocked is refresh with s.mu held; it returns what to tell of a
// server change once s.mu is released.
func (s *configSource) refreshLocked() (int, *rest.Config, func()) {
	if time.Since(s.checked) < kubeconfigCheckEvery {
		return s.gen, s.cfg, nil
	}
	s.checked = time.Now()
	// Never the file's content: its path and what is wrong with it.
	log := s.log.With("account", s.acct.Name)
	what := "kubeconfig file"
	if s.acct.ServiceAccount {
		log = log.With("caFile", s.acct.inClusterFiles().caFile)
		what = "service account's CA file"
	} else {
		log = log.With("kubeconfigFile", s.acct.KubeconfigFile)
	}
	cfg, err := loadConfig(s.acct)
	var sum [32]byte
	if err == nil {
		sum, err = s.fingerprint(cfg)
	}
	if err == nil && sum != s.sum {
		if _, terr := rest.TLSConfigFor(cfg); terr != nil {
			err = fmt.Errorf("account %s: %s: TLS configuration: %w", s.acct.Name, what, terr)
		}
	}
	if err != nil {
		if msg := err.Error(); msg != s.problem {
			s.problem = msg
			log.Warn("the account's "+what+" cannot be read again; still using the credentials loaded before", "err", err)
		}
		return s.gen, s.cfg, nil
	}
	if sum == s.sum {
		return s.gen, s.cfg, nil
	}
	s.sum, s.problem = sum, ""
	if cfg.Host != s.cfg.Host {
		// Another server may be another cluster: these clients keep
		// theirs (their resource versions are its), the account restarts.
		if s.moved == nil {
			log.Warn("the kubeconfig file now names another API server: these clients keep the one they were built for",
				"server", cfg.Host, "serving", s.cfg.Host)
			return s.gen, s.cfg, nil
		}
		acct, from, to := s.acct, s.cfg.Host, cfg.Host
		return s.gen, s.cfg, func() { s.moved(acct, from, to) }
	}
	s.cfg, s.gen = cfg, s.gen+1
	if s.acct.ServiceAccount {
		log.Info("the service account's CA file changed; the account's new connections trust its CAs from now on")
	} else {
		log.Info("kubeconfig file changed; the account's clients use its credentials from now on")
	}
	return s.gen, s.cfg, nil
}

// reloadingTransport sends the requests of one client built from a
// followed configuration: through base (built from the configuration as
// restConfig loaded it) until the file changes, then through a transport
// built from the new configuration.
type reloadingTransport struct {
	src   *configSource
	base  http.RoundTripper
	http1 bool // the client asked for HTTP/1.1 only (NextProtos)

	mu  sync.Mutex
	gen int               // generation of cur
	cur http.RoundTripper // nil: base
}

func (t *reloadingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	gen, cfg := t.src.current()
	rt := t.transport(gen, cfg)
	resp, err := t.send(rt, req)
	if !credentialsRefused(resp, err) && !(unreachable(err) && req.Context().Err() == nil) {
		return resp, err
	}
	ngen, ncfg := t.src.refresh()
	if ngen == gen {
		return resp, err
	}
	nrt := t.transport(ngen, ncfg)
	if nrt == rt {
		return resp, err
	}
	retry := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, err // not replayable: the next request has the new credentials
		}
		body, berr := req.GetBody()
		if berr != nil {
			return resp, err
		}
		retry.Body = body
	}
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	return t.send(nrt, retry)
}

// transport returns the round tripper of the source's configuration of
// generation gen, building it the first time.
func (t *reloadingTransport) transport(gen int, cfg *rest.Config) http.RoundTripper {
	if gen == 0 {
		return t.base
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen <= t.gen && t.cur != nil {
		return t.cur
	}
	c := rest.CopyConfig(cfg)
	if t.http1 {
		c.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	if c.CAFile != "" && len(c.CAData) == 0 {
		// client-go caches transports by CA file path, and reads the file
		// again every five minutes only: the CAs the file holds now.
		if data, err := os.ReadFile(c.CAFile); err == nil {
			c.CAData, c.CAFile = data, ""
		}
	}
	rt, err := rest.TransportFor(c)
	if err != nil {
		// Checked by refresh: not expected.
		t.src.log.Warn("the account's credential source changed but no client can be built from it; still using the credentials loaded before",
			"account", t.src.acct.Name, "source", t.src.acct.source(), "err", err)
		if t.cur != nil {
			return t.cur
		}
		return t.base
	}
	t.gen, t.cur = gen, rt
	return rt
}

// send sends req through rt; a transport other than base sets the
// credentials itself: those the client's wrappers set are removed.
func (t *reloadingTransport) send(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	if rt != t.base && req.Header.Get("Authorization") != "" {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	return rt.RoundTrip(req)
}

// WrappedRoundTripper lets client-go find the transport underneath
// (CloseIdleConnectionsFor, ...).
func (t *reloadingTransport) WrappedRoundTripper() http.RoundTripper { return t.base }

// credentialsRefused reports an answer that a change of the kubeconfig
// file may cure: credentials refused (401), not enough (403: also those of
// an anonymous user), or an API server certificate not trusted.
func credentialsRefused(resp *http.Response, err error) bool {
	if err != nil {
		var (
			cve *tls.CertificateVerificationError
			uae x509.UnknownAuthorityError
			hne x509.HostnameError
			cie x509.CertificateInvalidError
		)
		return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie)
	}
	return resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden)
}

// unreachable reports a request that did not reach the API server, which
// a kubeconfig file naming another server may cure: the connection
// refused or timed out, the server's name not resolved, the TLS handshake
// failed (an alert from the server, a server not speaking TLS, no answer).
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		op  *net.OpError
		dns *net.DNSError
		rhe tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &op) && (op.Op == "dial" || op.Op == "remote error"):
		return true
	case errors.As(err, &dns), errors.As(err, &rhe):
		return true
	}
	// http.Transport's, of an unexported type.
	return strings.Contains(err.Error(), "TLS handshake timeout")
}

// http1Only reports whether rt is client-go's transport of a configuration
// that asks for HTTP/1.1 only (the API proxy's upgrades).
func http1Only(rt http.RoundTripper) bool {
	for range 8 {
		switch t := rt.(type) {
		case *http.Transport:
			return t.TLSClientConfig != nil && slices.Equal(t.TLSClientConfig.NextProtos, []string{"http/1.1"})
		case utilnet.RoundTripperWrapper: // client-go's cache's, ...
			rt = t.WrappedRoundTripper()
		default:
			return false
		}
	}
	return false
}
