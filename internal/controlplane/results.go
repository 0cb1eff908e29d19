package controlplane

import (
	"context"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// UnclaimedResults receives the operation results that no SendOperation
// call of this replica waits for: results an agent sends again on a new
// session after the stream carrying the first attempt broke (the waiter on
// the old session has given up, or lives on another replica), and results
// whose waiter timed out. The operation API implements it by recording the
// result in the operation history.
//
// HandleResult is called from the session's receive loop: it must not wait
// for that agent's stream (the session is blocked meanwhile), only do short
// work such as a database update. A nil error makes the session acknowledge
// the result (the agent drops it); an error leaves it unacknowledged, so
// the agent sends it again on its next session.
type UnclaimedResults interface {
	HandleResult(ctx context.Context, agentID string, res *kubesvcv1.OperationResult) error
}

// SetUnclaimedResults installs h; call it before Run. Without one,
// unclaimed results are logged and acknowledged.
func (s *Server) SetUnclaimedResults(h UnclaimedResults) { s.unclaimed = h }

// operationResult hands an agent's result to the SendOperation waiting for
// it on this session, else to the UnclaimedResults hook, and returns the
// acknowledgement to send the agent (nil when the result must be sent
// again).
func (s *Server) operationResult(ctx context.Context, sess *session, res *kubesvcv1.OperationResult) *kubesvcv1.ControlMessage {
	ack := resultAck(res)
	if sess.deliverOperation(res) {
		return ack
	}
	if s.unclaimed == nil {
		s.log.Warn("operation result nobody waits for; dropped", "agent", sess.agentID, "operation", res.GetId())
		return ack
	}
	if err := s.unclaimed.HandleResult(ctx, sess.agentID, res); err != nil {
		s.log.Error("operation result nobody waits for could not be recorded; the agent will send it again",
			"agent", sess.agentID, "operation", res.GetId(), "err", err)
		return nil
	}
	return ack
}

// resultAck acknowledges res to the agent.
func resultAck(res *kubesvcv1.OperationResult) *kubesvcv1.ControlMessage {
	return &kubesvcv1.ControlMessage{Msg: &kubesvcv1.ControlMessage_OperationResultAck{
		OperationResultAck: &kubesvcv1.OperationResultAck{Id: res.GetId()}}}
}
