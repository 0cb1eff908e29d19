// Package dynaccounts is the Dynamic Accounts feature of the control plane:
// the REST API under /armory/accounts and the reconciler that drives each
// row of kubesvc_accounts through its lifecycle.
//
// The state lives in the database, not in memory. REST handlers only
// record intent (INACTIVE, TO_MIGRATE, TO_DEACTIVATE, DELETING); the
// reconciler of every replica looks at the rows, claims a transient row
// with a conditional update (the row's version), talks to agents through
// the control plane's streams (AddAccounts / DeleteAccounts), and records
// the outcome. A replica that dies mid-transition leaves a claimed row
// behind; the claim expires and any replica, or the same one restarted,
// finishes the job.
//
// Decisions that depend on agents (which agents an activation tries, an
// account without agent, an agent back) read the sessions and agent
// accounts recorded in the database after the rows they judge, never the
// replica's lagging view of the other replicas' agents: see reconcile.
//
//	INACTIVE --PATCH ACTIVE--> TO_MIGRATE --claim--> ACTIVATING --agent ok--> ACTIVE (failed_count 0)
//	                                                      \--all agents fail--> FAILED (error_message, failed_count+1)
//	FAILED --retryFrequency, failed_count <= maxRetries--> TO_MIGRATE
//	ACTIVE --no connected agent serves it--> ORPHANED --agent back or eligible--> ACTIVE / TO_MIGRATE
//	ACTIVE|FAILED|ORPHANED --PATCH INACTIVE--> TO_DEACTIVATE --claim--> DEACTIVATING --> INACTIVE
//	any --DELETE--> DELETING --agents stop--> row removed (or DELETE_FAILED)
package dynaccounts
