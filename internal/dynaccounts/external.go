package dynaccounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubesvc/kubesvc/internal/store"
)

// This file is the manager's API for other features that feed the same
// lifecycle: the Clouddriver accounts-table scan and the /credentials
// interceptor (internal/cdaccounts). Like the REST handlers, these methods
// only record intent in kubesvc_accounts and wake the reconciler, which
// does the work; validation and credential handling are the REST API's.

// ErrDeleting is returned (wrapped) when an account cannot be changed
// because it is being deleted.
var ErrDeleting = errors.New("the account is being deleted")

// ParseDefinition decodes one account definition in Clouddriver's shape
// (fields this package does not use are kept, unless they hold kubeconfig
// contents: an error) and validates it. Errors name the field ("name:
// required"), never the content.
func ParseDefinition(raw []byte) (Definition, error) {
	d, err := decodeDefinition(raw, "body", false)
	if err != nil {
		return Definition{}, err
	}
	return d, nil
}

// Enabled reports whether the feature is on (kubesvc.dynamicAccounts.enabled).
func (m *Manager) Enabled() bool { return m.cfg.Enabled }

// CheckCredentials validates d's credential fields as the REST API does
// (a malformed secret reference, inline contents without a sealing key,
// contents in kubeconfigFile, kubeconfigAgent or an unknown field) without
// storing anything. The error names the field, never the content.
func (m *Manager) CheckCredentials(ctx context.Context, d Definition) error {
	_, _, err := m.creds.Store(ctx, d)
	return err
}

// Import stores a new account bound for activation (TO_MIGRATE), marked
// dynamic; it fails with store.ErrExists if the name is taken. An account
// whose credentials are unusable is stored FAILED with the reason and no
// retries left rather than refused, so that a scan records the problem
// once; PATCH ACTIVE with working credentials revives it. Either way its
// definition is stored without credential content (see stored).
func (m *Manager) Import(ctx context.Context, d Definition) (store.Account, error) {
	a := store.Account{Name: d.Name, State: ToMigrate, ZoneID: d.ZoneID, Definition: d.stored(), Dynamic: true}
	ref, sealed, err := m.creds.Store(ctx, d)
	if err != nil {
		a.State, a.ErrorMessage, a.FailedCount = Failed, fmt.Sprintf("credentials: %v", err), m.cfg.MaxRetries+1
	}
	a.KubeconfigRef, a.KubeconfigSealed = ref, sealed
	out, err := m.st.CreateAccount(ctx, a)
	if err != nil {
		return store.Account{}, err
	}
	m.log.Info("dynamic account imported", "account", out.Name, "state", out.State, "error", out.ErrorMessage)
	m.poke()
	return out, nil
}

// Activate puts d under management and makes it ACTIVE, in one call: a
// new account is stored TO_MIGRATE; an existing one takes d's definition
// and credentials, and is sent to its agent again (ACTIVE, ACTIVATING,
// ORPHANED) or migrated with its retry count reset (INACTIVE, FAILED,
// TO_DEACTIVATE). created reports a new row. Unusable credentials are an
// error before anything is written; an account being deleted is
// ErrDeleting.
func (m *Manager) Activate(ctx context.Context, d Definition) (created bool, err error) {
	ref, sealed, err := m.creds.Store(ctx, d)
	if err != nil {
		return false, err
	}
	defer m.poke()
	_, err = m.st.CreateAccount(ctx, store.Account{Name: d.Name, State: ToMigrate, ZoneID: d.ZoneID,
		Definition: d.stored(), KubeconfigRef: ref, KubeconfigSealed: sealed, Dynamic: true})
	if !errors.Is(err, store.ErrExists) {
		return err == nil, err
	}
	var deleting bool
	err = m.update(ctx, d.Name, func(a *store.Account) bool {
		if deleting = a.State == Deleting; deleting {
			return false
		}
		a.Definition, a.KubeconfigRef, a.KubeconfigSealed, a.Dynamic = d.stored(), ref, sealed, true
		if d.ZoneID != "" {
			a.ZoneID = d.ZoneID
		}
		switch a.State {
		case Active, Activating, Orphaned:
			a.State, a.Owner = ToMigrate, ""
		default:
			wantActive(a)
		}
		return true
	})
	if deleting {
		return false, fmt.Errorf("account %q: %w", d.Name, ErrDeleting)
	}
	return false, err
}

// Update replaces an existing account's definition and credentials (PUT
// /armory/accounts/dynamic): an account being served is sent to its agent
// again at once; other states are kept. Unusable credentials are an error
// before anything is written; unknown accounts are store.ErrNotFound, one
// being deleted ErrDeleting.
func (m *Manager) Update(ctx context.Context, d Definition) error {
	ref, sealed, err := m.creds.Store(ctx, d)
	if err != nil {
		return err
	}
	defer m.poke()
	var deleting bool
	err = m.update(ctx, d.Name, func(a *store.Account) bool {
		if deleting = a.State == Deleting; deleting {
			return false
		}
		a.Definition, a.KubeconfigRef, a.KubeconfigSealed, a.Dynamic = d.stored(), ref, sealed, true
		if d.ZoneID != "" {
			a.ZoneID = d.ZoneID
		}
		if a.State == Active || a.State == Activating || a.State == Orphaned {
			a.State, a.Owner = ToMigrate, ""
		}
		return true
	})
	if deleting {
		return fmt.Errorf("account %q: %w", d.Name, ErrDeleting)
	}
	return err
}

// Deactivate asks for the account to be stopped on its agents and kept
// INACTIVE (PATCH INACTIVE). Unknown accounts: store.ErrNotFound.
func (m *Manager) Deactivate(ctx context.Context, name string) error {
	defer m.poke()
	return m.update(ctx, name, func(a *store.Account) bool {
		before := a.State
		wantInactive(a)
		return a.State != before
	})
}

// Delete asks for the account to be stopped on its agents and its row
// removed (DELETE /armory/accounts/{name}). Unknown accounts:
// store.ErrNotFound.
func (m *Manager) Delete(ctx context.Context, name string) error {
	defer m.poke()
	return m.update(ctx, name, func(a *store.Account) bool {
		if a.State == Deleting && a.Owner != "" {
			return false
		}
		a.State, a.Owner = Deleting, ""
		return true
	})
}

// wantActive records the wish for an account to be ACTIVE: INACTIVE,
// FAILED, ORPHANED and TO_DEACTIVATE accounts go to TO_MIGRATE with the
// retry count reset; other states are left as they are.
func wantActive(a *store.Account) {
	switch a.State {
	case Inactive, Failed, Orphaned, ToDeactivate:
		a.State, a.Owner, a.FailedCount, a.ErrorMessage = ToMigrate, "", 0, ""
	}
}

// wantInactive records the wish for an account to be INACTIVE: served
// accounts go to TO_DEACTIVATE, one waiting for migration back to
// INACTIVE.
func wantInactive(a *store.Account) {
	switch a.State {
	case Active, Activating, Failed, Orphaned, DeleteFailed:
		a.State, a.Owner = ToDeactivate, ""
	case ToMigrate:
		a.State = Inactive
	}
}
