// Package operations is the control plane's operation API, compatible with
// Clouddriver's: POST /kubernetes/ops (a list of single-key operation
// objects) and POST /kubernetes/ops/{name} (one bare description) start a
// task; GET /task/{id} reports it. Each operation is validated before
// anything moves, recorded in kubesvc_ops_history, sent down the stream of
// a connected agent serving the account, and awaited up to
// kubesvc.cache.operationWaitMs; a task never vanishes: it ends succeeded,
// failed with a message, or failed by timeout. Before a task is reported
// succeeded, the cache is made to reflect the objects the operation applied
// (read-your-writes). A clientRequestId makes a request idempotent: the same
// id runs once. Results an agent sends again after a reconnect, which no
// waiter on the session claims, come in through Manager.HandleResult (the
// control plane's UnclaimedResults hook) and finish the task in the history;
// a task whose agent disconnected before answering watches its row for them
// until its deadline (late.go).
package operations
