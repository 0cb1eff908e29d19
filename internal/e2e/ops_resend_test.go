package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testenv"
)

// cutProxy forwards TCP connections to a target. While holding it reads
// and discards what clients send (the connections stay open: bytes the
// agent writes are lost on the way, as when a connection dies in flight);
// cut closes every connection and forwards normally again.
type cutProxy struct {
	l  net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	target string
	hold   bool
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.cut("")
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

func (p *cutProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() {
			_, _ = io.Copy(c, up)
			c.Close()
		})
		p.wg.Go(func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					p.mu.Lock()
					hold := p.hold
					p.mu.Unlock()
					if !hold {
						if _, werr := up.Write(buf[:n]); werr != nil {
							break
						}
					}
				}
				if err != nil {
					break
				}
			}
			up.Close()
		})
	}
}

// holdClientBytes starts discarding what clients send.
func (p *cutProxy) holdClientBytes() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// cut closes every connection; new ones go to target (unless empty) and
// are forwarded normally.
func (p *cutProxy) cut(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.hold = nil, false
	if target != "" {
		p.target = target
	}
}

// An operation whose result is lost on the wire (the connection dies after
// the agent executed it and before the control plane got the answer)
// still succeeds: the agent keeps the unacknowledged result and sends it
// again on its next session. "cut": the agent reconnects to the same
// replica, whose waiting task picks the result up from the history;
// "restart": the control plane is restarted on the same database, and the
// new replica, which waits for nothing, finishes the task from the result.
func TestOpsResultSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "cut", true: "restart"}[restart]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cluster := testenv.StartForTest(t, testenv.Options{})
			cs, _ := clients(t, cluster)
			db := filepath.Join(t.TempDir(), "cp.db")
			cp := startControlPlane(t, cpOptions{dbPath: db, opWait: 30 * time.Second})
			proxy := startCutProxy(t, cp.grpc)
			ag := startAgent(t, proxy.addr(), account("main", cluster))
			cp.watching(t, "main")
			code, id, body := postOps(t, cp, "", `[{"deployManifest": {"account": "main", "moniker": {"app": "shop"}, "manifests": [`+deployment("lost", "nginx", "")+`]}}]`)
			if tk := waitTask(t, cp, id); code != http.StatusOK || tk.State != "SUCCEEDED" {
				t.Fatalf("deploy: %d %s %+v", code, body, tk)
			}

			// From now on what the agent sends is lost: the scale's
			// changes and its result.
			proxy.holdClientBytes()
			_, id, _ = postOps(t, cp, "", `[{"scaleManifest": {"account": "main", "manifestName": "deployment lost", "location": "default", "replicas": 3}}]`)
			eventually(t, wait, func() string {
				d, err := cs.AppsV1().Deployments("default").Get(context.Background(), "lost", metav1.GetOptions{})
				if err != nil || *d.Spec.Replicas != 3 || ag.PendingResults() != 1 {
					return "the agent has not executed the scale yet"
				}
				return ""
			})
			time.Sleep(300 * time.Millisecond) // the result goes out, into the void
			var rec map[string]any
			if _, _, err := getJSON(cp.http, "/armory/agent/operations/"+id, nil, &rec); err != nil || rec["state"] != "RUNNING" {
				t.Fatalf("before the cut the task is %v (%v), want RUNNING", rec["state"], err)
			}

			if restart {
				cp.stop(t)
				cp = startControlPlane(t, cpOptions{dbPath: db, opWait: 30 * time.Second, id: "cp-test-2"})
			}
			proxy.cut(cp.grpc)
			tk := waitTask(t, cp, id)
			if tk.State != "SUCCEEDED" || !strings.Contains(strings.Join(tk.ResultObjects[0].ManifestNamesByNamespace["default"], ","), "deployment lost") {
				t.Fatalf("task after the lost result: %+v", tk)
			}
			// Read-your-writes still holds: the cache has the scaled object.
			var obj cachedObject
			if code, body, _ := getJSON(cp.http, "/cache/objects/main/Deployment/lost", q("namespace", "default"), &obj); code != 200 ||
				!strings.Contains(string(obj.Manifest), `"replicas":3`) {
				t.Errorf("cached deployment right after success: %d %.300s", code, body)
			}
			eventually(t, wait, func() string {
				if n := ag.PendingResults(); n != 0 {
					return "the agent still keeps the acknowledged result"
				}
				return ""
			})
		})
	}
}
