// Package accountrules holds the checks of an account's settings that the
// agent's configuration (kubernetes.accounts) and the control plane's
// Dynamic Accounts API must both make, so that an account refused in the
// agent's file is not accepted through the API (to fail later, or to be
// served with a setting the file would call an error). Like ident, it
// depends on nothing of either side.
package accountrules

import (
	"fmt"
	"strings"
	"unicode"
)

// Problem is one refused setting: Field is its path below the account
// ("omitKinds[1]", "permissions.READ[0]"), Message what is wrong.
type Problem struct {
	Field, Message string
}

func (p Problem) Error() string { return p.Field + ": " + p.Message }

// Kinds refuses a kind listed in both kinds and omitKinds (compared
// case-insensitively, as kinds are matched): whether it is cached would
// depend on which list wins. One problem per such omitKinds entry.
func Kinds(kinds, omitKinds []string) []Problem {
	var out []Problem
	for i, k := range omitKinds {
		for _, s := range kinds {
			if strings.EqualFold(s, k) {
				out = append(out, Problem{Field: fmt.Sprintf("omitKinds[%d]", i), Message: fmt.Sprintf("kind %q is also listed in kinds", k)})
				break
			}
		}
	}
	return out
}

// PermissionKey refuses a permissions key other than READ or WRITE (any
// case).
func PermissionKey(key string) error {
	if up := strings.ToUpper(key); up != "READ" && up != "WRITE" {
		return fmt.Errorf("permission must be READ or WRITE")
	}
	return nil
}

// AuthorizationKey refuses a permissions key that is not one of Fiat's
// authorizations (READ, WRITE, EXECUTE, CREATE; any case): what
// Clouddriver's own account API takes, and so what a dynamic account may
// carry. A misspelt key would be stored and ignored by Spinnaker's
// authorization, leaving the account open to everyone.
func AuthorizationKey(key string) error {
	switch strings.ToUpper(key) {
	case "READ", "WRITE", "EXECUTE", "CREATE":
		return nil
	}
	return fmt.Errorf("permission must be READ or WRITE (or EXECUTE, CREATE)")
}

// Roles refuses an empty role name and one containing whitespace, in the
// role list of permissions key key: the Armory agent silently drops such
// permissions, which opens the account to every user. One problem per
// such role ("permissions.READ[0]").
func Roles(key string, roles []string) []Problem {
	var out []Problem
	for i, role := range roles {
		if role == "" || strings.ContainsFunc(role, unicode.IsSpace) {
			out = append(out, Problem{Field: fmt.Sprintf("permissions.%s[%d]", key, i), Message: fmt.Sprintf("role %q must be non-empty and contain no whitespace", role)})
		}
	}
	return out
}
