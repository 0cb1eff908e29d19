package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
	"github.com/kubesvc/kubesvc/internal/agent/ops"
)

// Executor runs one Clouddriver operation (its type and JSON description)
// against a cluster and returns the result as JSON.
type Executor interface {
	Execute(ctx context.Context, opType string, description []byte) ([]byte, error)
}

// maxConcurrentOperations bounds the operations executed at once.
const maxConcurrentOperations = 16

// executeOperation runs op on the account it names.
func (a *Agent) executeOperation(ctx context.Context, op *kubesvcv1.Operation) *kubesvcv1.OperationResult {
	res := &kubesvcv1.OperationResult{Id: op.GetId()}
	if a.cfg.NewExecutor == nil {
		res.Error = "this agent does not execute operations"
		return res
	}
	acct, ok := a.snapshot()[op.GetAccount()]
	if !ok {
		res.Error = fmt.Sprintf("account %q is not served by this agent", op.GetAccount())
		return res
	}
	if dl := op.GetDeadlineMs(); dl > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(dl))
		defer cancel()
	}
	ex, err := a.executor(acct)
	if err != nil {
		res.Error = fmt.Sprintf("account %s: %v", acct.Name, err)
		return res
	}
	out, err := ex.Execute(ctx, op.GetType(), op.GetPayload())
	if err != nil {
		// A protobuf string must be UTF-8, or the result cannot be sent.
		res.Error = strings.ToValidUTF8(err.Error(), "\uFFFD")
		return res
	}
	res.Success, res.Payload = true, out
	return res
}

// executor returns the account's executor, building it (client, discovery)
// the first time and again when the account's settings change.
func (a *Agent) executor(acct Account) (Executor, error) {
	return clientFor(a, a.executors, acct, a.cfg.NewExecutor)
}

// operationLoop hands the control plane's operations to the agent's
// operator (they run to completion even if this session breaks) and sends
// the results due on this session: new ones at once, ones an earlier
// session did not get acknowledged again (clouddriver.responseRetries.*).
// The control plane acknowledges each result it received with
// OperationResultAck (receiveLoop).
func (s *session) operationLoop(ctx context.Context, ops *inbox[*kubesvcv1.Operation]) error {
	a := s.agent
	box := a.operator.results
	id := box.newSession()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := box.due(id, time.Now())
		for _, res := range due {
			// The objects it applied go ahead of it, so the control
			// plane's cache reflects them when the result arrives.
			res, err := s.sendApplied(ctx, a.operator.accountOf(res.GetId()), res)
			if err != nil {
				return nil
			}
			select {
			case s.out <- item{msg: &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_OperationResult{OperationResult: res}}}:
			case <-ctx.Done():
				return nil
			}
		}
		var wake <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ops.ready:
			for _, op := range ops.take() {
				a.operator.start(op, a.executeOperation)
			}
		case <-box.changed:
		case <-wake:
		}
	}
}

// PendingResults returns how many operation results await the control
// plane's acknowledgement.
func (a *Agent) PendingResults() int { return a.operator.results.len() }

// ExecutorFactory builds the executor of an account's cluster.
type ExecutorFactory func(cfg *rest.Config) (Executor, error)

// OpsExecutors returns the factory of internal/agent/ops executors with
// opts (server-side-apply policy, retries).
func OpsExecutors(opts ops.Options) ExecutorFactory {
	if opts.Versions == nil {
		opts.Versions = &ops.VersionLocks{} // one for all the agent's executors
	}
	return func(cfg *rest.Config) (Executor, error) {
		ex, err := ops.New(cfg, opts)
		if err != nil {
			return nil, err
		}
		return opsExecutor{ex}, nil
	}
}

type opsExecutor struct{ ex *ops.Executor }

func (e opsExecutor) Execute(ctx context.Context, opType string, description []byte) ([]byte, error) {
	res, err := e.ex.Execute(ctx, opType, description)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}
