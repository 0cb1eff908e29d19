// Package accountview renders an account in the KubesvcAccount shape of
// the REST contract (plugin-rest-api.swagger.json), for the agents' view
// (/agents/kubernetes/accounts/{name}) and the Dynamic Accounts API
// (/armory/accounts/{name}) alike. Credential content never appears:
// inline kubeconfig contents show as "<sealed>".
package accountview

import (
	"encoding/json"
	"fmt"

	"github.com/kubesvc/kubesvc/internal/store"
)

// Account is KubesvcAccount, plus agentId, agents and agentStates (ours).
type Account struct {
	Name               string              `json:"name"`
	Status             string              `json:"status"`
	ZoneID             string              `json:"zoneId,omitempty"`
	KubeHost           string              `json:"kubeHost,omitempty"`
	KubeVersion        string              `json:"kubeVersion,omitempty"`
	CertFingerprint    string              `json:"certFingerprint,omitempty"`
	ErrorMessage       string              `json:"errorMessage,omitempty"`
	RetryCount         int                 `json:"retryCount"`
	Connections        int                 `json:"connections"`
	Dynamic            bool                `json:"dynamic"`
	LastUpdated        int64               `json:"lastUpdated"`
	MaxWatchAgeSeconds int64               `json:"maxWatchAgeSeconds"`
	AgentID            string              `json:"agentId,omitempty"`
	Definition         map[string]any      `json:"definition"`
	DefinitionAsString string              `json:"definitionAsString"`
	Properties         map[string]any      `json:"properties"`
	PropertiesAsString string              `json:"propertiesAsString"`
	Permissions        map[string][]string `json:"permissions"`
	// Agents serving the account and the state each reports (SYNCING,
	// WATCHING, ERROR).
	Agents      []string          `json:"agents"`
	AgentStates map[string]string `json:"agentStates"`
	// ConflictingDynamicAccount (ours): a dynamic account of the same name
	// (a row of the Dynamic Accounts API) that the agents serving this
	// one statically do not take; its state is its own, not this
	// account's. Absent when there is none.
	ConflictingDynamicAccount *DynamicConflict `json:"conflictingDynamicAccount,omitempty"`
}

// DynamicConflict is the lifecycle state of a dynamic account named like
// a static one.
type DynamicConflict struct {
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	LastUpdated  int64  `json:"lastUpdated"`
	Note         string `json:"note"`
}

// Conflict describes row, a dynamic account's row named like a static
// account.
func Conflict(row store.Account) *DynamicConflict {
	return &DynamicConflict{Status: row.State, ErrorMessage: row.ErrorMessage, LastUpdated: row.UpdatedAt.UnixMilli(),
		Note: "a dynamic account of this name exists, but the agents serving this account serve it from their configuration " +
			"and do not take the dynamic one; delete it with DELETE /armory/accounts/" + row.Name}
}

// New returns the view of an account with its definition and API server
// facts; the caller fills in the rest.
func New(name, status string, definition map[string]any, kubeHost, kubeVersion, certFingerprint string) Account {
	if definition == nil {
		definition = map[string]any{}
	}
	defStr, _ := json.Marshal(definition)
	props := map[string]any{"kubeHost": kubeHost, "kubeVersion": kubeVersion, "certFingerprint": certFingerprint}
	propsStr, _ := json.Marshal(props)
	return Account{
		Name: name, Status: status, KubeHost: kubeHost, KubeVersion: kubeVersion, CertFingerprint: certFingerprint,
		Definition: definition, DefinitionAsString: string(defStr), Properties: props, PropertiesAsString: string(propsStr),
		Permissions: permissions(definition), Agents: []string{}, AgentStates: map[string]string{},
	}
}

// FromRow renders a kubesvc_accounts row.
func FromRow(a store.Account) Account {
	def := map[string]any{}
	_ = json.Unmarshal(a.Definition, &def)
	if a.KubeconfigSealed != "" {
		def["kubeconfigContents"] = "<sealed>"
	}
	v := New(a.Name, a.State, def, a.APIHost, a.KubeVersion, a.CertFingerprint)
	v.ZoneID, v.ErrorMessage, v.RetryCount, v.Dynamic = a.ZoneID, a.ErrorMessage, a.FailedCount, a.Dynamic
	v.LastUpdated, v.AgentID = a.UpdatedAt.UnixMilli(), a.AgentID
	if ms, ok := def["maxResumableResourceAgeMs"].(float64); ok {
		v.MaxWatchAgeSeconds = int64(ms) / 1000
	}
	return v
}

// permissions reads the definition's permissions map (READ/WRITE -> roles).
func permissions(def map[string]any) map[string][]string {
	out := map[string][]string{}
	p, ok := def["permissions"].(map[string]any)
	if !ok {
		return out
	}
	for k, v := range p {
		if list, ok := v.([]any); ok {
			for _, x := range list {
				out[k] = append(out[k], fmt.Sprint(x))
			}
		}
	}
	return out
}
