package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// sendLoop batches consecutive changes and sends messages in queue order,
// never more than maxInflightBatches unacknowledged batches at once. prio
// is a lane of messages (the Kubernetes API proxy's answers) that go
// ahead of the queue and are not held behind a batch waiting for its
// slot: a proxied request must not wait for the cache's persistence. limit
// is the control plane's largest accepted message; batches stay under half
// of it, and a single change too large for it is sent without its body.
func (a *Agent) sendLoop(ctx context.Context, stream kubesvcv1.AgentService_ConnectClient, in <-chan item, prio <-chan *kubesvcv1.AgentMessage, window chan struct{}, limit int) error {
	maxBytes := min(limit/2, defaultMaxBatchBytes)
	var (
		seq     uint64
		pending *item // an item taken from in but not yet sent
	)
	for {
		var it item
		if pending != nil {
			it, pending = *pending, nil
		} else {
			select {
			case m := <-prio:
				if err := stream.Send(m); err != nil {
					return fmt.Errorf("send: %w", err)
				}
				continue
			case it = <-in:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if it.msg != nil {
			if res := it.msg.GetOperationResult(); res != nil && proto.Size(it.msg) > limit-4096 {
				it.msg = &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_OperationResult{OperationResult: a.fitResult(res, limit-4096)}}
			}
			if err := stream.Send(it.msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			continue
		}
		first := a.fit(it.change, limit)
		batch := &kubesvcv1.ChangeBatch{Changes: []*kubesvcv1.Change{first}}
		size := proto.Size(first)
	fill:
		for len(batch.Changes) < maxBatchChanges && size < maxBytes {
			select {
			case next := <-in:
				if next.msg != nil {
					pending = &next
					break fill
				}
				c := a.fit(next.change, limit)
				n := proto.Size(c)
				if size+n > maxBytes {
					next.change = c
					pending = &next
					break fill
				}
				batch.Changes = append(batch.Changes, c)
				size += n
			default:
				break fill
			}
		}
		// While the batch waits for a slot (the control plane persisting
		// earlier ones), the priority lane keeps moving.
	slot:
		for {
			select {
			case window <- struct{}{}:
				break slot
			case m := <-prio:
				if err := stream.Send(m); err != nil {
					return fmt.Errorf("send: %w", err)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		seq++
		batch.Seq = seq
		if err := stream.Send(&kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_Changes{Changes: batch}}); err != nil {
			return fmt.Errorf("send batch %d: %w", seq, err)
		}
		a.stats.Batches.Add(1)
		a.stats.Changes.Add(int64(len(batch.Changes)))
		a.stats.BatchBytes.Add(int64(size))
	}
}

// fit returns c, or, when c alone would exceed the control plane's message
// limit, a copy whose object carries only its identity and labels, so that
// one huge object cannot stall the stream.
func (a *Agent) fit(c *kubesvcv1.Change, limit int) *kubesvcv1.Change {
	if proto.Size(c) <= limit-4096 {
		return c
	}
	var obj *kubesvcv1.Object
	switch ch := c.GetChange().(type) {
	case *kubesvcv1.Change_Listed:
		obj = ch.Listed
	case *kubesvcv1.Change_Upserted:
		obj = ch.Upserted
	case *kubesvcv1.Change_Applied:
		obj = ch.Applied
	default:
		return c
	}
	a.stats.Truncated.Add(1)
	a.log.Warn("object too large for the control plane's message limit; sending its metadata only",
		"account", c.GetStream().GetAccount(), "kind", c.GetStream().GetResource().GetKind(),
		"namespace", obj.GetNamespace(), "name", obj.GetName(), "bytes", len(obj.GetJson()), "limit", limit)
	small := proto.Clone(c).(*kubesvcv1.Change)
	o := small.GetListed()
	if o == nil {
		o = small.GetUpserted()
	}
	if o == nil {
		o = small.GetApplied()
	}
	r := c.GetStream().GetResource()
	apiVersion := r.GetVersion()
	if r.GetGroup() != "" {
		apiVersion = r.GetGroup() + "/" + apiVersion
	}
	o.Json, _ = json.Marshal(truncated(apiVersion, r.GetKind(), o.GetName(), o.GetNamespace(), o.GetUid(), o.GetResourceVersion(), o.GetLabels()))
	return small
}

// truncated is what stands for an object too large to send: its identity
// and labels, marked.
func truncated(apiVersion, kind, name, namespace, uid, rv string, labels map[string]string) map[string]any {
	return map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{
			"name": name, "namespace": namespace, "uid": uid,
			"resourceVersion": rv, "labels": labels,
			"annotations": map[string]string{"kubesvc.io/truncated": "true"},
		},
	}
}

// fitResult returns a copy of res that fits in limit bytes: the manifests
// of its payload cut to their identity (see fit), then, if that is not
// enough, its error message cut and its payload replaced by a note. A
// result over the control plane's message limit would end the session, on
// every attempt to send it.
func (a *Agent) fitResult(res *kubesvcv1.OperationResult, limit int) *kubesvcv1.OperationResult {
	out := proto.Clone(res).(*kubesvcv1.OperationResult)
	var payload map[string]any
	if json.Unmarshal(res.GetPayload(), &payload) == nil {
		if ms, ok := payload["manifests"].([]any); ok {
			for i, m := range ms {
				u, ok := m.(map[string]any)
				if !ok {
					continue
				}
				md, _ := u["metadata"].(map[string]any)
				str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
				labels := map[string]string{}
				if l, ok := md["labels"].(map[string]any); ok {
					for k, v := range l {
						labels[k], _ = v.(string)
					}
				}
				ms[i] = truncated(str(u, "apiVersion"), str(u, "kind"), str(md, "name"), str(md, "namespace"), str(md, "uid"), str(md, "resourceVersion"), labels)
			}
			if b, err := json.Marshal(payload); err == nil {
				out.Payload = b
			}
		}
	}
	if proto.Size(out) > limit {
		if len(out.Error) > 4096 {
			cut := 4096
			for cut > 0 && !utf8.RuneStart(out.Error[cut]) {
				cut-- // a proto string must stay valid UTF-8
			}
			out.Error = out.Error[:cut] + "... (cut: too long for the control plane's message limit)"
		}
		if proto.Size(out) > limit {
			out.Payload, _ = json.Marshal(map[string]any{"kubesvc.io/truncated": "the result was too large for the control plane's message limit"})
		}
	}
	a.stats.Truncated.Add(1)
	a.log.Warn("operation result too large for the control plane's message limit; sent cut",
		"operation", res.GetId(), "bytes", proto.Size(res), "now", proto.Size(out), "limit", limit)
	return out
}
