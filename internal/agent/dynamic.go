package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// probeTimeout bounds the check of one dynamic account's cluster.
const probeTimeout = 10 * time.Second

// maxConcurrentProbes bounds the clusters checked at once per command.
const maxConcurrentProbes = 32

// accountFromProto turns a dynamic account sent by the control plane into
// an Account. Errors never quote the kubeconfig.
func accountFromProto(d *kubesvcv1.DynamicAccount) (Account, error) {
	a := Account{
		Name: d.GetName(), Context: d.GetContext(), ServiceAccount: d.GetServiceAccount(),
		KubeconfigFile: d.GetKubeconfigFile(),
		Namespaces:     d.GetNamespaces(), OmitNamespaces: d.GetOmitNamespaces(),
		Kinds: d.GetKinds(), OmitKinds: d.GetOmitKinds(), OnlyNamespacedResources: d.GetOnlyNamespacedResources(),
		MaxResumableAge: time.Duration(d.GetMaxResumableResourceAgeMs()) * time.Millisecond,
		Dynamic:         true,
	}
	if a.MaxResumableAge == 0 {
		a.MaxResumableAge = 5 * time.Minute
	}
	for _, c := range d.GetCustomResourceDefinitions() {
		kind, group, _ := strings.Cut(c.GetKind(), ".")
		a.CRDs = append(a.CRDs, CRD{Kind: kind, Group: group, Cluster: strings.EqualFold(c.GetScope(), "Cluster")})
	}
	if a.Name == "" {
		return Account{}, errors.New("name: required")
	}
	if b64 := d.GetKubeconfigBase64(); b64 != "" {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return Account{}, errors.New("kubeconfig: not valid base64")
		}
		if _, err := clientcmd.Load(raw); err != nil {
			return Account{}, fmt.Errorf("kubeconfig: not a valid kubeconfig (%d bytes)", len(raw))
		}
		a.Kubeconfig = raw
	}
	if len(a.Kubeconfig) == 0 && a.KubeconfigFile == "" && !a.ServiceAccount {
		return Account{}, errors.New("no kubeconfig, kubeconfig file or service account given")
	}
	return a, nil
}

// addDynamic checks each account's cluster and, if it answers, serves the
// account. An account already served dynamically is replaced (its new
// settings take effect); one configured statically is refused.
func (a *Agent) addDynamic(ctx context.Context, accounts []*kubesvcv1.DynamicAccount) []*kubesvcv1.AccountResult {
	results := make([]*kubesvcv1.AccountResult, len(accounts))
	sem := make(chan struct{}, maxConcurrentProbes)
	var wg sync.WaitGroup
	for i, d := range accounts {
		results[i] = &kubesvcv1.AccountResult{Name: d.GetName()}
		if a.cfg.DisableDynamicAccounts {
			results[i].Error = "this agent does not accept dynamic accounts (dynamicAccountsEnabled is false)"
			continue
		}
		acct, err := accountFromProto(d)
		if err != nil {
			results[i].Error = err.Error()
			continue
		}
		acct.NoProxy = a.cfg.KubernetesNoProxy
		a.mu.Lock()
		_, static := a.accounts[acct.Name]
		a.mu.Unlock()
		if static {
			results[i].Error = fmt.Sprintf("account %q is configured statically in this agent", acct.Name)
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg, err := restConfig(acct, a.log)
			if err != nil {
				results[i].Error = err.Error()
				return
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			info, err := probe(pctx, acct, cfg)
			if err != nil {
				results[i].Error = fmt.Sprintf("cluster check failed: %v", err)
				return
			}
			acct.fillInfo(info)
			a.mu.Lock()
			a.dynamic[acct.Name] = acct
			a.infos[acct.Name] = info
			a.mu.Unlock()
			results[i].Success, results[i].Info = true, info
		})
	}
	wg.Wait()
	a.signalChanged()
	return results
}

// deleteDynamic stops serving dynamic accounts; unknown names succeed. A
// name configured statically succeeds too, and its static account stays
// as configured: only a dynamic account of that name (shadowed by the
// static one since a reload) is dropped. The control plane asks to drop
// a name of a dynamic account's row from every agent serving it; refusing
// for the static account left that row DELETE_FAILED for ever.
func (a *Agent) deleteDynamic(names []string) []*kubesvcv1.AccountResult {
	results := make([]*kubesvcv1.AccountResult, 0, len(names))
	a.mu.Lock()
	for _, n := range names {
		r := &kubesvcv1.AccountResult{Name: n, Success: true}
		if _, static := a.accounts[n]; static {
			delete(a.dynamic, n) // infos, executors and relays are the static account's
		} else {
			delete(a.dynamic, n)
			delete(a.infos, n)
			delete(a.executors, n)
			delete(a.relays, n)
		}
		results = append(results, r)
	}
	a.mu.Unlock()
	a.signalChanged()
	return results
}

// handleCommand executes one account command.
func (a *Agent) handleCommand(ctx context.Context, cmd *kubesvcv1.AccountCommand) *kubesvcv1.AccountCommandResult {
	res := &kubesvcv1.AccountCommandResult{Id: cmd.GetId()}
	switch c := cmd.GetCommand().(type) {
	case *kubesvcv1.AccountCommand_Add:
		res.Results = a.addDynamic(ctx, c.Add.GetAccounts())
	case *kubesvcv1.AccountCommand_Delete:
		res.Results = a.deleteDynamic(c.Delete.GetNames())
	}
	return res
}

// maxConcurrentCommands bounds the account commands executed at once.
const maxConcurrentCommands = 4

// commandLoop executes the control plane's account commands, a few at a
// time, and queues their results; it waits for those it started.
func (s *session) commandLoop(ctx context.Context, cmds *inbox[*kubesvcv1.AccountCommand]) error {
	return serve(ctx, s, cmds, maxConcurrentCommands, func(cmd *kubesvcv1.AccountCommand) *kubesvcv1.AgentMessage {
		res := s.agent.handleCommand(ctx, cmd)
		if cmd.GetAdd() != nil {
			// The agent that takes a dynamic account caches it.
			var taken []string
			for _, r := range res.GetResults() {
				if r.GetSuccess() {
					taken = append(taken, r.GetName())
				}
			}
			s.assigned.add(taken...)
			s.agent.signalChanged()
		}
		return &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_AccountCommandResult{AccountCommandResult: res}}
	})
}

// serve runs handle on each request from in, at most limit at a time, and
// queues each answer on the session's stream, in the order they finish.
// It returns when ctx ends, after the handlers it started.
func serve[T any](ctx context.Context, s *session, in *inbox[T], limit int, handle func(T) *kubesvcv1.AgentMessage) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, limit)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.ready:
		}
		for _, req := range in.take() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Go(func() {
				defer func() { <-sem }()
				msg := handle(req)
				select {
				case s.out <- item{msg: msg}:
				case <-ctx.Done():
				}
			})
		}
	}
}
