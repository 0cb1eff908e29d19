package floor

// The floor of a deploy: an apply server that sends each POSTed deploy down
// its agent's stream and answers the POST with the outcome the agent sends
// back.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"sync"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// Both ways a message is an 8-byte operation id and its payload: down, the
// POST's body (a JSON array of ConfigMap manifests); up, the outcome (empty
// when every apply succeeded, else the error).

func withID(id uint64, payload []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(payload)), id), payload...)
}

func splitID(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errors.New("short message")
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// applyAgentMain applies each deploy the server sends, in a goroutine of its
// own, and sends the outcome back.
func applyAgentMain(args []string) error {
	fs := flag.NewFlagSet("apply-agent", flag.ExitOnError)
	server := fs.String("server", "", "the floor apply server's gRPC address")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, -1 // as the agent and the benchmark's direct path
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cms := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	ctx := context.Background()
	stream, err := dial(ctx, *server)
	if err != nil {
		return err
	}
	// Say hello: the server learns of the stream with the first message.
	if err := send(stream, withID(0, nil)); err != nil {
		return err
	}
	var sendMu sync.Mutex
	for {
		b, err := recv(stream)
		if err != nil {
			return err
		}
		go func() {
			id, body, err := splitID(b)
			if err == nil {
				err = apply(ctx, cms, body)
			}
			var outcome []byte
			if err != nil {
				outcome = []byte(err.Error())
				if len(outcome) == 0 {
					outcome = []byte("failed")
				}
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = send(stream, withID(id, outcome))
		}()
	}
}

// apply applies the manifests one by one, as bench/operations' direct path
// does.
func apply(ctx context.Context, cms dynamic.NamespaceableResourceInterface, body []byte) error {
	var manifests []json.RawMessage
	if err := json.Unmarshal(body, &manifests); err != nil {
		return err
	}
	force := true
	for _, m := range manifests {
		var meta struct {
			Metadata struct{ Name, Namespace string }
		}
		if err := json.Unmarshal(m, &meta); err != nil {
			return err
		}
		if _, err := cms.Namespace(meta.Metadata.Namespace).Patch(ctx, meta.Metadata.Name, types.ApplyPatchType, m,
			metav1.PatchOptions{FieldManager: "bench", Force: &force}); err != nil {
			return err
		}
	}
	return nil
}

// applyServer sends deploys down its agent's stream and matches the
// outcomes to the POSTs waiting for them.
type applyServer struct {
	mu      sync.Mutex
	stream  grpc.ServerStream // the agent's, once it said hello
	next    uint64
	pending map[uint64]chan []byte
	sendMu  sync.Mutex
}

func applyServerMain(args []string) error {
	fs := flag.NewFlagSet("apply-server", flag.ExitOnError)
	grpcAddr := fs.String("grpc", "", "gRPC listen address")
	httpAddr := fs.String("http", "", "HTTP listen address")
	_ = fs.Parse(args)
	s := &applyServer{pending: map[uint64]chan []byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ready := s.stream != nil
		s.mu.Unlock()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /deploy", s.deploy)
	return serve(*grpcAddr, *httpAddr, s.outcomes, mux)
}

// outcomes takes the agent's stream and hands each outcome to its POST.
func (s *applyServer) outcomes(stream grpc.ServerStream) error {
	defer func() { s.mu.Lock(); s.stream = nil; s.mu.Unlock() }()
	for {
		b, err := recv(stream)
		if err != nil {
			return err
		}
		id, outcome, err := splitID(b)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if id == 0 {
			s.stream = stream
		}
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ch != nil {
			ch <- outcome
		}
	}
}

// deploy answers POST /deploy once the agent's outcome is back: 200, or
// 502 with the error.
func (s *applyServer) deploy(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch := make(chan []byte, 1)
	s.mu.Lock()
	stream := s.stream
	s.next++
	id := s.next
	s.pending[id] = ch
	s.mu.Unlock()
	if stream == nil {
		http.Error(w, "no agent", http.StatusServiceUnavailable)
		return
	}
	s.sendMu.Lock()
	err = send(stream, withID(id, body))
	s.sendMu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	select {
	case outcome := <-ch:
		if len(outcome) > 0 {
			http.Error(w, string(outcome), http.StatusBadGateway)
		}
	case <-r.Context().Done():
	}
}
