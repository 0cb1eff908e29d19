package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kubesvcv1 "github.com/kubesvc/kubesvc/api/kubesvc/v1"
)

// sender runs the agent's real sendLoop and receiveLoop over a real stream
// to a control plane double.
type sender struct {
	agent            *Agent
	in               chan item
	window           chan struct{}
	stop             func()
	sendErr, recvErr chan error
}

// startSender runs sendLoop with limit, the control plane's largest accepted
// message (Welcome.max_batch_bytes): batches stay under half of it.
func startSender(t *testing.T, d *controlPlaneDouble, in chan item, limit int) *sender {
	t.Helper()
	a, err := New(Config{Target: d.addr, ID: "test-agent", ZoneID: "test", Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream := d.open(t, ctx)
	s := &sender{agent: a, in: in, window: make(chan struct{}, maxInflightBatches), sendErr: make(chan error, 1), recvErr: make(chan error, 1)}
	go func() { s.sendErr <- a.sendLoop(ctx, stream, in, nil, s.window, limit) }()
	go func() {
		s.recvErr <- newSession(a, &kubesvcv1.Welcome{}).receiveLoop(ctx, stream, s.window, newInboxes())
	}()
	var stopped bool
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for _, c := range []chan error{s.sendErr, s.recvErr} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				t.Error("sendLoop/receiveLoop did not end within 10s of the cancel")
			}
		}
	}
	t.Cleanup(s.stop)
	return s
}

func testChange(i int, jsonBytes int) *kubesvcv1.Change {
	return &kubesvcv1.Change{
		Stream: streamKey("acct", "", "v1", "configmaps", true, ""),
		Change: &kubesvcv1.Change_Upserted{Upserted: &kubesvcv1.Object{Namespace: "ns", Name: fmt.Sprintf("obj-%05d", i), Json: make([]byte, jsonBytes)}},
	}
}

func testStatus(i int) *kubesvcv1.AgentMessage {
	return &kubesvcv1.AgentMessage{Msg: &kubesvcv1.AgentMessage_AccountStatus{AccountStatus: &kubesvcv1.AccountStatus{Account: fmt.Sprintf("status-%05d", i), State: kubesvcv1.AccountStatus_WATCHING}}}
}

// label names a queue item or a received change/status for order checks.
func label(c *kubesvcv1.Change, m *kubesvcv1.AgentMessage) string {
	if c != nil {
		return c.GetUpserted().GetName()
	}
	return m.GetAccountStatus().GetAccount()
}

// receive collects messages until n changes and statuses (in total) have
// arrived; it returns their labels in arrival order and the batches.
func receive(t *testing.T, d *controlPlaneDouble, n int) (order []string, batches []*kubesvcv1.ChangeBatch) {
	t.Helper()
	for len(order) < n {
		m := d.next(t)
		switch {
		case m.GetChanges() != nil:
			batches = append(batches, m.GetChanges())
			for _, c := range m.GetChanges().GetChanges() {
				order = append(order, label(c, nil))
			}
		case m.GetAccountStatus() != nil:
			order = append(order, label(nil, m))
		default:
			t.Fatalf("unexpected message %v", m)
		}
	}
	return order, batches
}

func batchSize(b *kubesvcv1.ChangeBatch) (n int) {
	for _, c := range b.GetChanges() {
		n += proto.Size(c)
	}
	return n
}

// Items queued before the sender starts: the changes between two statuses
// form one batch, and each status goes out between the same changes.
func TestSendLoopKeepsStatusesBetweenTheSameChanges(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	in := make(chan item, 64)
	var want []string
	addChange := func(i int) {
		c := testChange(i, 10)
		in <- item{change: c}
		want = append(want, label(c, nil))
	}
	addStatus := func(i int) {
		m := testStatus(i)
		in <- item{msg: m}
		want = append(want, label(nil, m))
	}
	for i := range 10 {
		addChange(i)
	}
	addStatus(1)
	for i := 10; i < 20; i++ {
		addChange(i)
	}
	addStatus(2)
	addStatus(3)
	addChange(20)
	startSender(t, d, in, 2*defaultMaxBatchBytes)

	var kinds []string
	var got []string
	var seqs []uint64
	for len(got) < len(want) {
		m := d.next(t)
		if b := m.GetChanges(); b != nil {
			kinds = append(kinds, fmt.Sprintf("batch(%d)", len(b.GetChanges())))
			seqs = append(seqs, b.GetSeq())
			for _, c := range b.GetChanges() {
				got = append(got, label(c, nil))
			}
		} else {
			kinds = append(kinds, "status")
			got = append(got, label(nil, m))
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order on the wire:\n got %v\nwant %v", got, want)
	}
	if k := strings.Join(kinds, " "); k != "batch(10) status batch(10) status status batch(1)" {
		t.Errorf("messages on the wire: %s", k)
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("batch seqs %v, want [1 2 3]", seqs)
	}
}

// A producer interleaves changes and statuses while the sender drains the
// queue (the real session queue size): whatever the batching, the control
// plane sees exactly the queue order, and no status is ever moved across a
// change.
func TestSendLoopPreservesOrderUnderLoad(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	in := make(chan item, queueLen)
	s := startSender(t, d, in, 2*defaultMaxBatchBytes)
	const total = 6000
	want := make([]string, 0, total)
	var changes int64
	for i := range total {
		var it item
		if i%37 == 36 || i%501 == 0 {
			it.msg = testStatus(i)
			want = append(want, label(nil, it.msg))
		} else {
			it.change = testChange(i, 50)
			want = append(want, label(it.change, nil))
			changes++
		}
		select {
		case in <- it:
		case <-time.After(10 * time.Second):
			t.Fatalf("queue blocked at item %d", i)
		}
	}
	got, batches := receive(t, d, total)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d on the wire is %s, want %s (first difference)", i, got[i], want[i])
		}
	}
	for _, b := range batches {
		if n := len(b.GetChanges()); n == 0 || n > maxBatchChanges {
			t.Errorf("batch %d has %d changes", b.GetSeq(), n)
		}
	}
	if n := s.agent.stats.Batches.Load(); n != int64(len(batches)) {
		t.Errorf("stats.Batches %d, %d batches received", n, len(batches))
	}
	if n := s.agent.stats.Changes.Load(); n != changes {
		t.Errorf("stats.Changes %d, %d changes sent", n, changes)
	}
}

func TestSendLoopCapsChangesPerBatch(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	const total = 2*maxBatchChanges + 500
	in := make(chan item, total)
	for i := range total {
		in <- item{change: testChange(i, 0)}
	}
	startSender(t, d, in, 2*defaultMaxBatchBytes)
	got, batches := receive(t, d, total)
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, len(b.GetChanges()))
	}
	// All were queued: batches fill up to the cap, never beyond.
	if fmt.Sprint(sizes) != fmt.Sprint([]int{maxBatchChanges, maxBatchChanges, 500}) {
		t.Errorf("batch sizes %v, want [%d %d 500]", sizes, maxBatchChanges, maxBatchChanges)
	}
	for i := range got {
		if got[i] != fmt.Sprintf("obj-%05d", i) {
			t.Fatalf("change %d is %s", i, got[i])
		}
	}
}

func TestSendLoopCapsBytesPerBatch(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	const (
		limit    = 20_000    // the control plane's message limit
		maxBytes = limit / 2 // what a batch may hold
	)
	in := make(chan item, 200)
	var n int
	for i := range 100 {
		js := 900 + 37*(i%7)
		switch i {
		case 30:
			js = maxBytes + 1000 // above a batch's share, within the limit: alone
		case 60:
			js = 3 * limit // above the limit: sent without its body
		}
		in <- item{change: testChange(i, js)}
		n++
	}
	s := startSender(t, d, in, limit)
	got, batches := receive(t, d, n)
	for i := range got {
		if got[i] != fmt.Sprintf("obj-%05d", i) {
			t.Fatalf("change %d is %s", i, got[i])
		}
	}
	if len(batches) < 2 {
		t.Fatalf("%d batches", len(batches))
	}
	for i, b := range batches {
		cs := b.GetChanges()
		size := batchSize(b)
		if size > limit {
			t.Errorf("batch %d: %d bytes, above the limit %d", b.GetSeq(), size, limit)
		}
		if len(cs) > 1 && size > maxBytes {
			t.Errorf("batch %d: %d changes in %d bytes, above %d", b.GetSeq(), len(cs), size, maxBytes)
		}
		// Everything was queued: a batch ends only when the next change
		// would not fit.
		if i < len(batches)-1 {
			if next := proto.Size(batches[i+1].GetChanges()[0]); size+next <= maxBytes {
				t.Errorf("batch %d: %d bytes, closed although the next change (%d bytes) fits under %d", b.GetSeq(), size, next, maxBytes)
			}
		}
		for _, c := range cs {
			switch c.GetUpserted().GetName() {
			case "obj-00030":
				if len(cs) != 1 || len(c.GetUpserted().GetJson()) != maxBytes+1000 {
					t.Errorf("the oversized change went in a batch of %d, body %d bytes", len(cs), len(c.GetUpserted().GetJson()))
				}
			case "obj-00060":
				o := c.GetUpserted()
				if len(o.GetJson()) >= limit || !strings.Contains(string(o.GetJson()), "kubesvc.io/truncated") || o.GetNamespace() != "ns" {
					t.Errorf("the change above the limit arrived as %s/%s with %d bytes: %.200s", o.GetNamespace(), o.GetName(), len(o.GetJson()), o.GetJson())
				}
			}
		}
	}
	if n := s.agent.stats.Truncated.Load(); n != 1 {
		t.Errorf("stats.Truncated %d, want 1", n)
	}
}

// Under light load a change goes out alone, without waiting for company.
func TestSendLoopSendsALoneChangeAtOnce(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{autoAck: true})
	in := make(chan item, queueLen)
	startSender(t, d, in, 2*defaultMaxBatchBytes)
	for i := range 3 {
		in <- item{change: testChange(i, 10)}
		m := d.next(t)
		if cs := m.GetChanges().GetChanges(); len(cs) != 1 || label(cs[0], nil) != fmt.Sprintf("obj-%05d", i) {
			t.Fatalf("got %v", m)
		}
	}
}

// Without acknowledgements at most maxInflightBatches batches are sent; each
// ack lets exactly one more go, and statuses wait behind the blocked batch.
func TestSendLoopWindow(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{})
	const changes = 20
	in := make(chan item, 32)
	var want []string
	for i := range changes {
		// 3,000 bytes against a limit of 10,000 (batches up to 5,000):
		// every batch holds one change.
		c := testChange(i, 3000)
		in <- item{change: c}
		want = append(want, label(c, nil))
		if i == 9 {
			st := testStatus(i)
			in <- item{msg: st}
			want = append(want, label(nil, st))
		}
	}
	queued := len(in)
	s := startSender(t, d, in, 10_000)

	var got []string
	take := func() *kubesvcv1.AgentMessage {
		m := d.next(t)
		if b := m.GetChanges(); b != nil {
			for _, c := range b.GetChanges() {
				got = append(got, label(c, nil))
			}
		} else {
			got = append(got, label(nil, m))
		}
		return m
	}
	for i := range maxInflightBatches {
		if m := take(); m.GetChanges().GetSeq() != uint64(i+1) {
			t.Fatalf("message %d: %v", i, m)
		}
	}
	// The sender took the next change and waits for a window slot.
	waitFor(t, "the sender to block on the full window", func() bool {
		return len(s.window) == maxInflightBatches && len(in) <= queued-maxInflightBatches-1
	})
	if n := d.batches.Load(); n != maxInflightBatches {
		t.Fatalf("%d batches on the wire with none acknowledged", n)
	}
	if n := s.agent.stats.Batches.Load(); n != maxInflightBatches {
		t.Fatalf("stats: %d batches sent with none acknowledged", n)
	}

	// One ack, one more batch (the 9th).
	d.ack(1)
	if m := take(); m.GetChanges().GetSeq() != maxInflightBatches+1 {
		t.Fatalf("after one ack: %v", m)
	}
	// Ack the rest one at a time: each ack releases one more batch. The
	// status needs no window slot; it follows the batch before it at once.
	for seq := uint64(2); len(got) < len(want); seq++ {
		d.ack(seq)
		if m := take(); m.GetAccountStatus() != nil {
			take()
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order on the wire:\n got %v\nwant %v", got, want)
	}
}

// The control plane acknowledging a batch the agent never sent ends the
// session.
func TestReceiveLoopRejectsUnexpectedAck(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{})
	s := startSender(t, d, make(chan item), 2*defaultMaxBatchBytes)
	d.ack(1)
	select {
	case err := <-s.recvErr:
		if err == nil || !strings.Contains(err.Error(), "not sent") {
			t.Errorf("receiveLoop: %v", err)
		}
		s.recvErr <- err // for stop
	case <-time.After(10 * time.Second):
		t.Fatal("receiveLoop accepted an ack for nothing")
	}
}

func TestTakeResumeHonoursMaxResumableAge(t *testing.T) {
	t.Parallel()
	now := time.Now()
	key := streamKey("acct", "apps", "v1", "deployments", true, "")
	inNS := streamKey("acct", "apps", "v1", "deployments", true, "team-a")
	otherVersion := streamKey("acct", "apps", "v1beta2", "deployments", true, "")
	withSelector := streamKey("acct", "apps", "v1", "deployments", true, "")
	withSelector.SelectorHash = selectorHash("metadata.namespace!=kube-system")
	point := func(k *kubesvcv1.StreamKey, rv string, age time.Duration) *kubesvcv1.ResumePoint {
		return &kubesvcv1.ResumePoint{Stream: k, ResourceVersion: rv, UpdatedAtMs: now.Add(-age).UnixMilli()}
	}
	cases := []struct {
		name   string
		points []*kubesvcv1.ResumePoint
		key    *kubesvcv1.StreamKey
		maxAge time.Duration
		want   string
	}{
		{"no point", nil, key, time.Hour, ""},
		{"fresh point", []*kubesvcv1.ResumePoint{point(key, "42", time.Minute)}, key, time.Hour, "42"},
		{"fresh point, maxAge 0: never resume", []*kubesvcv1.ResumePoint{point(key, "42", 0)}, key, 0, ""},
		{"negative maxAge: never resume", []*kubesvcv1.ResumePoint{point(key, "42", 0)}, key, -time.Hour, ""},
		// The control plane's clock may be ahead of the agent's.
		{"point from the future, maxAge 0: never resume", []*kubesvcv1.ResumePoint{point(key, "42", -time.Hour)}, key, 0, ""},
		{"point from the future, maxAge set: resume", []*kubesvcv1.ResumePoint{point(key, "42", -time.Minute)}, key, time.Hour, "42"},
		{"old point ignored", []*kubesvcv1.ResumePoint{point(key, "42", 2*time.Hour)}, key, time.Hour, ""},
		{"point without a version", []*kubesvcv1.ResumePoint{point(key, "", time.Second)}, key, time.Hour, ""},
		{"point of another namespace", []*kubesvcv1.ResumePoint{point(key, "42", time.Second)}, inNS, time.Hour, ""},
		{"point of the namespace", []*kubesvcv1.ResumePoint{point(key, "41", time.Second), point(inNS, "42", time.Second)}, inNS, time.Hour, "42"},
		{"point of another account", []*kubesvcv1.ResumePoint{point(streamKey("other", "apps", "v1", "deployments", true, ""), "42", time.Second)}, key, time.Hour, ""},
		// Resource versions are not comparable across API versions or selectors.
		{"point of another version of the resource", []*kubesvcv1.ResumePoint{point(otherVersion, "42", time.Second)}, key, time.Hour, ""},
		{"point recorded without the selector", []*kubesvcv1.ResumePoint{point(key, "42", time.Second)}, withSelector, time.Hour, ""},
		{"point recorded with another selector", []*kubesvcv1.ResumePoint{point(withSelector, "42", time.Second)}, key, time.Hour, ""},
		{"point recorded with the same selector", []*kubesvcv1.ResumePoint{point(withSelector, "42", time.Second)}, withSelector, time.Hour, "42"},
	}
	for _, c := range cases {
		s := newSession(&Agent{}, &kubesvcv1.Welcome{ResumePoints: c.points})
		if got := s.takeResume(c.key, c.maxAge); got != c.want {
			t.Errorf("%s: takeResume = %q, want %q", c.name, got, c.want)
		}
		// A resume point is used at most once per session.
		if got := s.takeResume(c.key, c.maxAge); got != "" {
			t.Errorf("%s: second takeResume = %q, want \"\"", c.name, got)
		}
	}
}

// runSession says Hello with the agent's identity and accounts, and an
// account that cannot be served is reported as ERROR through the session's
// queue.
func TestRunSessionHelloAndAccountError(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{welcome: &kubesvcv1.Welcome{SessionId: "s1", MaxBatchBytes: 1 << 20}, autoAck: true})
	a, err := New(Config{Target: d.addr, ID: "agent-7", ZoneID: "zone-7", Version: "test", Log: testLogger(t),
		Accounts: []Account{{Name: "broken", KubeconfigFile: "/nonexistent/kubeconfig", Kinds: []string{"pod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.runSession(ctx, d.dial(t))
	}()
	h := d.hello(t)
	if h.GetAgentId() != "agent-7" || h.GetZoneId() != "zone-7" || h.GetProtocol() != 1 || len(h.GetAccounts()) != 1 || h.GetAccounts()[0].GetName() != "broken" {
		t.Errorf("hello: %v", h)
	}
	m := d.next(t)
	st := m.GetAccountStatus()
	if st.GetAccount() != "broken" || st.GetState() != kubesvcv1.AccountStatus_ERROR || !strings.Contains(st.GetMessage(), "/nonexistent/kubeconfig") {
		t.Errorf("first message: %v", m)
	}
	if !a.Connected() || a.stats.Connects.Load() != 1 {
		t.Errorf("connected %v connects %d", a.Connected(), a.stats.Connects.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runSession did not end within 10s of the cancel")
	}
}

// A control plane that answers Hello with anything but a Welcome is refused.
func TestRunSessionRequiresWelcome(t *testing.T) {
	t.Parallel()
	d := startControlPlaneDouble(t, doubleOptions{noWelcome: true})
	a, err := New(Config{Target: d.addr, ID: "agent", ZoneID: "z", Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	healthy, err := a.runSession(ctx, d.dial(t))
	if healthy || err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "without a welcome") {
		t.Errorf("runSession: healthy=%v err=%v", healthy, err)
	}
	if a.Connected() || a.stats.Connects.Load() != 0 {
		t.Errorf("refused session counted: connected %v connects %d", a.Connected(), a.stats.Connects.Load())
	}
}

// The session tracks the streams the control plane holds per account: the
// Welcome's, plus every stream a change is emitted for, minus those
// removed (with their resume points); forgetAccount drops an account's
// streams and resume points.
func TestSessionKnownStreams(t *testing.T) {
	t.Parallel()
	a1 := streamKey("a", "apps", "v1", "deployments", true, "")
	a2 := streamKey("a", "", "v1", "pods", true, "")
	b1 := streamKey("b", "", "v1", "pods", true, "")
	now := time.Now().UnixMilli()
	s := newSession(&Agent{}, &kubesvcv1.Welcome{ResumePoints: []*kubesvcv1.ResumePoint{
		{Stream: a1, ResourceVersion: "1", UpdatedAtMs: now},
		{Stream: b1, ResourceVersion: "2", UpdatedAtMs: now},
	}})
	ids := func(account string) string {
		var out []string
		for id := range s.knownStreams(account) {
			out = append(out, id)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	if got := ids("a"); got != streamID(a1) {
		t.Errorf("known a after welcome: %q", got)
	}
	ctx := context.Background()
	if err := s.emit(ctx, &kubesvcv1.Change{Stream: a2, Change: &kubesvcv1.Change_SyncBegin{SyncBegin: &kubesvcv1.SyncBegin{}}}); err != nil {
		t.Fatal(err)
	}
	want := []string{streamID(a1), streamID(a2)}
	slices.Sort(want)
	if got := ids("a"); got != strings.Join(want, " ") {
		t.Errorf("known a after emit: %q, want %q", got, want)
	}
	if err := s.emit(ctx, &kubesvcv1.Change{Stream: a1, Change: &kubesvcv1.Change_StreamRemoved{StreamRemoved: &kubesvcv1.StreamRemoved{}}}); err != nil {
		t.Fatal(err)
	}
	if got := ids("a"); got != streamID(a2) {
		t.Errorf("known a after StreamRemoved: %q", got)
	}
	if rv := s.takeResume(a1, time.Hour); rv != "" {
		t.Errorf("resume point of a removed stream used: %q (its objects are gone: it must relist)", rv)
	}
	// The changes are queued in order.
	if it := <-s.out; it.change.GetStream() != a2 || it.change.GetSyncBegin() == nil {
		t.Errorf("first queued: %v", it.change)
	}
	if it := <-s.out; it.change.GetStream() != a1 || it.change.GetStreamRemoved() == nil {
		t.Errorf("second queued: %v", it.change)
	}
	s.forgetAccount("b")
	if got := ids("b"); got != "" {
		t.Errorf("known b after forgetAccount: %q", got)
	}
	if rv := s.takeResume(b1, time.Hour); rv != "" {
		t.Errorf("resume point of a forgotten account used: %q", rv)
	}
	// A cancelled emit on a full queue returns the context's error.
	full := &session{out: make(chan item), resume: map[string]*kubesvcv1.ResumePoint{}, known: map[string]map[string]*kubesvcv1.StreamKey{}}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := full.emit(cctx, &kubesvcv1.Change{Stream: a1}); !errors.Is(err, context.Canceled) {
		t.Errorf("emit on a blocked queue after cancel: %v", err)
	}
}

// WATCHING is due once every running stream has reported; its message
// names the streams that cannot be served.
func TestStreamsSummary(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := &streams{running: map[string]*runningStream{"x": {}, "y": {}}, reported: map[string]streamHealth{}}
	if sum := st.summary(now, time.Second); sum.done {
		t.Error("done before any report")
	}
	st.reported["x"] = streamHealth{served: true}
	if sum := st.summary(now, time.Second); sum.done {
		t.Error("done with y unreported")
	}
	st.reported["y"] = streamHealth{served: true}
	if sum := st.summary(now, time.Second); !sum.done || len(sum.failing) != 0 {
		t.Errorf("all serving: %+v", sum)
	}
	st.reported["y"] = streamHealth{err: errors.New("forbidden"), refused: true, since: now}
	st.running["w"] = &runningStream{}
	st.reported["w"] = streamHealth{err: errors.New("gone"), refused: true, since: now}
	sum := st.summary(now, time.Second)
	if !sum.done || sum.refused.count != 2 || sum.refused.names() != "w, y" || sum.refused.sample != "w: gone" || sum.full() != "w: gone; y: forbidden" {
		t.Errorf("with failures: %+v", sum)
	}
	empty := &streams{running: map[string]*runningStream{}, reported: map[string]streamHealth{}}
	if sum := empty.summary(now, time.Second); !sum.done || len(sum.failing) != 0 {
		t.Errorf("no streams: %+v", sum)
	}
}

// A stream failing for another reason than a refusal (the API server
// unreachable) counts after a grace: until then it is as it was (served,
// or not reported yet), and the summary says when to look again.
func TestStreamsSummaryGrace(t *testing.T) {
	t.Parallel()
	now := time.Now()
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	st := &streams{running: map[string]*runningStream{"x": {}, "y": {}}, reported: map[string]streamHealth{
		"x": {err: down, since: now.Add(-time.Second), served: true},
		"y": {served: true},
	}}
	sum := st.summary(now, 5*time.Second)
	if !sum.done || len(sum.failing) != 0 || !sum.recheck.Equal(now.Add(4*time.Second)) {
		t.Errorf("within the grace: %+v", sum)
	}
	st.reported["y"] = streamHealth{err: down, since: now.Add(-time.Second)}
	if sum := st.summary(now, 5*time.Second); sum.done {
		t.Error("done with a stream never served failing within its grace")
	}
	sum = st.summary(now.Add(5*time.Second), 5*time.Second)
	if !sum.done || sum.unreachable.count != 2 || !sum.recheck.IsZero() || !sum.unreachable.since.Equal(now.Add(-time.Second)) {
		t.Errorf("beyond the grace: %+v", sum)
	}
}

// Every stream failing is an ERROR; the message is bounded however many
// streams fail, names a few, quotes one error, and gives the usual fix.
func TestDescribeAccount(t *testing.T) {
	t.Parallel()
	now := time.Now()
	long := strings.Repeat("x", 300)
	st := &streams{running: map[string]*runningStream{}, reported: map[string]streamHealth{}}
	for i := range 60 {
		id := fmt.Sprintf("k%02d", i)
		st.running[id] = &runningStream{key: &kubesvcv1.StreamKey{Resource: &kubesvcv1.Resource{Resource: id, Namespaced: i > 0}, Namespace: map[bool]string{true: "team-a"}[i > 0]}}
		err := apierrors.NewForbidden(schema.GroupResource{Resource: id}, "", errors.New(long+" at the cluster scope"))
		st.reported[id] = streamHealth{err: err, refused: true, since: now}
	}
	r := &accountRunner{acct: Account{Name: "a"}}
	state, msg := r.describe(st.summary(now, time.Second), nil, discoveryFailure{})
	if state != kubesvcv1.AccountStatus_ERROR || len(msg) > 1500 || !strings.Contains(msg, "60 of 60 streams cannot be served (k00, k01 in team-a, k02 in team-a, k03 in team-a, k04 in team-a and 55 more)") ||
		strings.Count(msg, long) != 1 || !strings.Contains(msg, "list them in its namespaces") {
		t.Errorf("every stream forbidden: %s, %d bytes: %q", state, len(msg), msg)
	}
	r.acct.Namespaces = []string{"team-a"}
	if _, msg := r.describe(st.summary(now, time.Second), nil, discoveryFailure{}); !strings.Contains(msg, "cluster-scoped kinds (k00): set onlyNamespacedResources") {
		t.Errorf("namespaces set, a cluster-scoped kind forbidden: %q", msg)
	}
	// One stream served: WATCHING.
	st.reported["k01"] = streamHealth{served: true}
	if state, _ := r.describe(st.summary(now, time.Second), nil, discoveryFailure{}); state != kubesvcv1.AccountStatus_WATCHING {
		t.Errorf("one stream served: %s", state)
	}
	// The API server unreachable, beyond the grace: ERROR, saying so.
	down := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for id := range st.running {
		st.reported[id] = streamHealth{err: fmt.Errorf("watch %s: %w", id, down), since: now, served: true}
	}
	state, msg = r.describe(st.summary(now.Add(time.Minute), time.Second), nil, discoveryFailure{})
	want := "API server unreachable since " + now.UTC().Format(time.RFC3339) + " (60 of 60 streams): k00: watch k00: dial tcp: connect: connection refused"
	if state != kubesvcv1.AccountStatus_ERROR || msg != want {
		t.Errorf("unreachable: %s %q, want ERROR %q", state, msg, want)
	}
}

// An Applied change or an operation result above the control plane's
// message limit goes out cut to the objects' identities, rather than end
// the session on every attempt.
func TestOversizedAppliedAndResultAreCut(t *testing.T) {
	t.Parallel()
	const limit = 20_000
	a := &Agent{log: discardLogger(), stats: &Stats{}}
	big := strings.Repeat("x", 3*limit)
	applied := &kubesvcv1.Change{Stream: &kubesvcv1.StreamKey{Account: "a", Resource: &kubesvcv1.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}},
		Change: &kubesvcv1.Change_Applied{Applied: &kubesvcv1.Object{Name: "cm", Namespace: "ns", ResourceVersion: "7", Json: []byte(`{"data":{"k":"` + big + `"}}`)}}}
	c := a.fit(applied, limit)
	if o := c.GetApplied(); proto.Size(c) > limit || o.GetResourceVersion() != "7" || !strings.Contains(string(o.GetJson()), "kubesvc.io/truncated") {
		t.Errorf("applied change: %d bytes, %+v", proto.Size(c), o)
	}
	res := &kubesvcv1.OperationResult{Id: "t/0", Success: true, Payload: []byte(`{"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"ns","resourceVersion":"7"},"data":{"k":"` + big + `"}}],` +
		`"manifestNamesByNamespace":{"ns":["configMap cm"]}}`)}
	cut := a.fitResult(res, limit)
	var payload struct {
		Manifests []struct {
			Kind     string
			Metadata struct{ Name, ResourceVersion string }
		}
		ManifestNamesByNamespace map[string][]string
	}
	if err := json.Unmarshal(cut.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	if proto.Size(cut) > limit || len(payload.Manifests) != 1 || payload.Manifests[0].Metadata.Name != "cm" ||
		payload.Manifests[0].Metadata.ResourceVersion != "7" || len(payload.ManifestNamesByNamespace["ns"]) != 1 {
		t.Errorf("result cut to %d bytes: %s", proto.Size(cut), cut.GetPayload())
	}
	if len(res.GetPayload()) < 3*limit {
		t.Error("the kept result was changed (it is resent as it is)")
	}
	// A huge error message, a payload without manifests: still fits.
	huge := &kubesvcv1.OperationResult{Id: "t/1", Error: "x" + strings.Repeat("é", limit), Payload: []byte(`{"other":"` + big + `"}`)}
	cut = a.fitResult(huge, limit)
	if _, err := proto.Marshal(cut); err != nil || proto.Size(cut) > limit || !strings.HasPrefix(cut.GetError(), "xé") {
		t.Errorf("result with a huge error and payload cut to %d bytes (limit %d): %v", proto.Size(cut), limit, err)
	}
}

func TestHeartbeatEvery(t *testing.T) {
	for _, c := range []struct {
		keepalive, timeout, want time.Duration
	}{
		{0, 0, 20 * time.Second},                               // pings off, an older control plane
		{5 * time.Second, 0, 5 * time.Second},                  // the keepalive interval
		{time.Minute, 90 * time.Second, 30 * time.Second},      // a third of the timeout
		{0, 30 * time.Second, 10 * time.Second},                // the 20 s default, capped too
		{10 * time.Second, 90 * time.Second, 10 * time.Second}, // already often enough
		{time.Minute, 2 * time.Second, time.Second},            // never under a second
	} {
		if got := heartbeatEvery(c.keepalive, c.timeout); got != c.want {
			t.Errorf("heartbeatEvery(%s, %s) = %s, want %s", c.keepalive, c.timeout, got, c.want)
		}
	}
}
