// Package cdaccounts migrates Clouddriver's Kubernetes accounts to agent
// management: the automatic scan of Clouddriver's accounts table and the
// interception of Clouddriver's /credentials endpoints. Every account it
// takes goes through the Dynamic Accounts lifecycle (internal/dynaccounts:
// kubesvc_accounts, the reconciler, zones, retries, FAILED), exactly as one
// created with the /armory/accounts API.
//
// Clouddriver's tables (accounts: id, type, body, created_at,
// last_modified_at, last_modified_by; accounts_history: id, version, type,
// body, last_modified_at, is_deleted) belong to Clouddriver: they are
// read and written with its schema and its repository's semantics, so a
// Clouddriver sharing the database sees the same accounts.
//
// Scan (kubesvc.dynamicAccounts.namePatterns): one replica at a time,
// holding the kubesvc_leases row "clouddriver-accounts-scan", reads the
// Kubernetes rows every scanFrequencySeconds and, at most scanBatchSize
// per round, imports matching accounts not yet in kubesvc_accounts
// (TO_MIGRATE -> ACTIVE), updates those whose row changed since, and
// reactivates those whose row came back. Accounts it took whose row is
// gone are deactivated. kubesvc_migrated_accounts remembers which accounts
// came from the table, so accounts created with the REST API are never
// touched.
//
// Interceptor (kubesvc.dynamicAccounts.interceptor.enabled): POST, PUT
// /credentials, PUT and DELETE /credentials/{name}, GET
// /credentials/type/{type} and GET /credentials/{name}/history with
// Clouddriver's semantics and error messages; a Kubernetes account is
// written to Clouddriver's tables and put under agent management in the
// same request (POST: created and activated; PUT: updated, the change sent
// to the agent; DELETE: deactivated and deleted). Other account types are
// proxied to Clouddriver when its URL is configured, else stored as
// Clouddriver would.
package cdaccounts
