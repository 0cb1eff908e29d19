package dynaccounts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/store"
)

// activate sends claimed ACTIVATING accounts to agents: with a zone, the
// agents of that zone; without, every connected agent in turn until one
// succeeds. Accounts no agent took become FAILED with the reasons.
func (m *Manager) activate(ctx context.Context, claimed []store.Account, agents []controlplane.AgentInfo) {
	byZone := map[string][]store.Account{}
	payload := map[string]*kubesvcv1.DynamicAccount{}
	for _, a := range claimed {
		def := loadDefinition(a.Definition)
		content, err := m.creds.Resolve(ctx, def, a.KubeconfigRef, a.KubeconfigSealed)
		if err != nil {
			m.fail(ctx, a, fmt.Sprintf("credentials: %v", err))
			continue
		}
		p := def.toProto(content)
		if content == nil && !def.ServiceAccount {
			p.KubeconfigFile = def.KubeconfigAgent
		}
		payload[a.Name] = p
		byZone[a.ZoneID] = append(byZone[a.ZoneID], a)
	}
	zones := make([]string, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	for _, zone := range zones {
		remaining := byZone[zone]
		reasons := map[string][]string{}
		candidates := eligible(agents, zone)
		for _, ag := range candidates {
			if len(remaining) == 0 {
				break
			}
			results, err := m.addInChunks(ctx, ag.ID, pick(payload, remaining))
			var next []store.Account
			for _, a := range remaining {
				r, ok := results[a.Name]
				switch {
				case !ok && err != nil:
					reasons[a.Name] = append(reasons[a.Name], fmt.Sprintf("agent %s: %v", ag.ID, err))
					next = append(next, a)
				case !ok:
					reasons[a.Name] = append(reasons[a.Name], fmt.Sprintf("agent %s: no result for the account", ag.ID))
					next = append(next, a)
				case !r.GetSuccess():
					reasons[a.Name] = append(reasons[a.Name], fmt.Sprintf("agent %s: %s", ag.ID, r.GetError()))
					next = append(next, a)
				default:
					info := r.GetInfo()
					m.transition(ctx, a, func(a *store.Account) {
						// A success ends the run of failures: later ones,
						// unrelated, get every retry again.
						a.State, a.Owner, a.ErrorMessage, a.AgentID, a.FailedCount = Active, "", "", ag.ID, 0
						if a.ZoneID == "" {
							a.ZoneID = ag.ZoneID
						}
						a.APIHost, a.KubeVersion, a.CertFingerprint = info.GetApiHost(), info.GetKubernetesVersion(), info.GetCertFingerprint()
					})
				}
			}
			remaining = next
		}
		for _, a := range remaining {
			msg := strings.Join(reasons[a.Name], "; ")
			if len(candidates) == 0 {
				msg = "no connected agent accepts dynamic accounts"
				if zone != "" {
					msg = fmt.Sprintf("no connected agent of zone %q accepts dynamic accounts", zone)
				}
			}
			m.fail(ctx, a, msg)
		}
	}
}

// addChunk bounds the accounts of one AddAccounts command, so that each
// command's answer fits CommandTimeout however many accounts are migrating.
const addChunk = 500

// addInChunks sends accounts to one agent, addChunk per command, the
// commands concurrently, and merges the results. Accounts of a failed
// command are missing from the result; the error is the first one.
func (m *Manager) addInChunks(ctx context.Context, agentID string, accounts []*kubesvcv1.DynamicAccount) (map[string]*kubesvcv1.AccountResult, error) {
	var (
		mu       sync.Mutex // guards all and firstErr
		all      = map[string]*kubesvcv1.AccountResult{}
		firstErr error
		wg       sync.WaitGroup
	)
	for start := 0; start < len(accounts); start += addChunk {
		chunk := accounts[start:min(start+addChunk, len(accounts))]
		wg.Go(func() {
			results, err := m.send(ctx, agentID, &kubesvcv1.AccountCommand{Command: &kubesvcv1.AccountCommand_Add{Add: &kubesvcv1.AddAccounts{Accounts: chunk}}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for k, v := range results {
				all[k] = v
			}
		})
	}
	wg.Wait()
	return all, firstErr
}

func pick(payload map[string]*kubesvcv1.DynamicAccount, accounts []store.Account) []*kubesvcv1.DynamicAccount {
	out := make([]*kubesvcv1.DynamicAccount, 0, len(accounts))
	for _, a := range accounts {
		out = append(out, payload[a.Name])
	}
	return out
}

// fail records a failed activation attempt.
func (m *Manager) fail(ctx context.Context, a store.Account, msg string) {
	m.transition(ctx, a, func(a *store.Account) {
		a.State, a.Owner, a.ErrorMessage = Failed, "", msg
		a.FailedCount++
	})
}

// send runs one account command with the configured timeout and indexes
// the results by account.
func (m *Manager) send(ctx context.Context, agentID string, cmd *kubesvcv1.AccountCommand) (map[string]*kubesvcv1.AccountResult, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CommandTimeout)
	defer cancel()
	cmd.Id = m.commandID()
	res, err := m.agent.SendAccountCommand(ctx, agentID, cmd)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*kubesvcv1.AccountResult, len(res.GetResults()))
	for _, r := range res.GetResults() {
		out[r.GetName()] = r
	}
	return out, nil
}

// stopOnAgents asks every connected agent serving one of the accounts to
// stop, and returns the failures by account; retry marks those of them
// whose agent could not be reached but is still connected (its replica
// not known here yet, or stopping): worth trying again at once.
func (m *Manager) stopOnAgents(ctx context.Context, accounts []store.Account, held map[string][]string) (failures map[string]string, retry map[string]bool) {
	byAgent := map[string][]string{}
	for _, a := range accounts {
		for _, id := range held[a.Name] {
			byAgent[id] = append(byAgent[id], a.Name)
		}
	}
	failures, retry = map[string]string{}, map[string]bool{}
	for id, names := range byAgent {
		results, err := m.send(ctx, id, &kubesvcv1.AccountCommand{Command: &kubesvcv1.AccountCommand_Delete{Delete: &kubesvcv1.DeleteAccounts{Names: names}}})
		if errors.Is(err, controlplane.ErrAgentGone) && m.stillConnected(ctx, id) {
			// Not reached (its replica unknown here yet, or stopping), but
			// still connected: it still serves them, and keeps them across
			// reconnections: the stop is tried again.
			for _, n := range names {
				failures[n] = fmt.Sprintf("agent %s: not reached, and still connected (tried again): %v", id, err)
				retry[n] = true
			}
			continue
		}
		for _, n := range names {
			switch r, ok := results[n]; {
			case errors.Is(err, controlplane.ErrAgentGone):
				// It stopped serving everything by leaving.
			case err != nil:
				failures[n] = fmt.Sprintf("agent %s: %v", id, err)
			case ok && !r.GetSuccess():
				failures[n] = fmt.Sprintf("agent %s: %s", id, r.GetError())
			}
		}
	}
	return failures, retry
}

// stillConnected tells whether the database records a session of agent id
// (a read error counts as connected: the stop is retried rather than
// assumed).
func (m *Manager) stillConnected(ctx context.Context, id string) bool {
	agents, err := m.agent.ClusterAgents(ctx)
	if err != nil {
		return true
	}
	for _, a := range agents {
		if a.ID == id {
			return true
		}
	}
	return false
}

// deactivate stops claimed DEACTIVATING accounts on their agents.
func (m *Manager) deactivate(ctx context.Context, claimed []store.Account, held map[string][]string) {
	failures, retry := m.stopOnAgents(ctx, claimed, held)
	for _, a := range claimed {
		m.transition(ctx, a, func(a *store.Account) {
			a.State, a.Owner, a.ErrorMessage = Inactive, "", failures[a.Name]
			if retry[a.Name] {
				a.State = ToDeactivate
			}
		})
	}
}

// remove stops claimed DELETING accounts on their agents and deletes the
// rows; an agent refusing leaves DELETE_FAILED with its reason.
func (m *Manager) remove(ctx context.Context, claimed []store.Account, held map[string][]string) {
	failures, retry := m.stopOnAgents(ctx, claimed, held)
	for _, a := range claimed {
		if retry[a.Name] {
			// Unclaimed, still DELETING: the next pass tries again.
			m.transition(ctx, a, func(a *store.Account) { a.Owner, a.ErrorMessage = "", failures[a.Name] })
			continue
		}
		if msg, failed := failures[a.Name]; failed {
			m.transition(ctx, a, func(a *store.Account) { a.State, a.Owner, a.ErrorMessage = DeleteFailed, "", msg })
			continue
		}
		if err := m.st.RemoveAccount(ctx, a.Name, a.Version); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			m.log.Error("dynamic accounts: remove", "account", a.Name, "err", err)
			continue
		}
		m.log.Info("dynamic account deleted", "account", a.Name)
	}
}
