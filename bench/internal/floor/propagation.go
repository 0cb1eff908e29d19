package floor

// The floor of propagation: a watch agent relaying each ConfigMap event, as
// it comes, to a read server that keeps the latest of each in memory.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// An event message is: its kind (one byte: 'A' added or modified, 'D'
// deleted, 'S' the first list is in, nothing else), the name, a 0 byte, the
// resourceVersion, a 0 byte, the object's protobuf encoding.
func encodeEvent(kind byte, cm *corev1.ConfigMap) ([]byte, error) {
	data, err := cm.Marshal()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 3+len(cm.Name)+len(cm.ResourceVersion)+len(data))
	b = append(b, kind)
	b = append(append(b, cm.Name...), 0)
	b = append(append(b, cm.ResourceVersion...), 0)
	return append(b, data...), nil
}

func decodeEvent(b []byte) (kind byte, name string, rv uint64, data []byte, err error) {
	if len(b) == 0 {
		return 0, "", 0, nil, fmt.Errorf("empty event")
	}
	kind, b = b[0], b[1:]
	if kind == 'S' {
		return kind, "", 0, nil, nil
	}
	f := bytes.SplitN(b, []byte{0}, 3)
	if len(f) != 3 {
		return 0, "", 0, nil, fmt.Errorf("malformed event")
	}
	rv, err = strconv.ParseUint(string(f[1]), 10, 64)
	return kind, string(f[0]), rv, f[2], err
}

// watchAgentMain lists and watches the namespace's ConfigMaps (typed
// clientset, protobuf) and sends every object up the stream as it comes.
func watchAgentMain(args []string) error {
	fs := flag.NewFlagSet("watch-agent", flag.ExitOnError)
	server := fs.String("server", "", "the floor read server's gRPC address")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	namespace := fs.String("namespace", "", "namespace of the ConfigMaps")
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, -1 // as the agent and the benchmark's own clients
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	stream, err := dial(ctx, *server)
	if err != nil {
		return err
	}
	emit := func(kind byte, cm *corev1.ConfigMap) error {
		b, err := encodeEvent(kind, cm)
		if err != nil {
			return err
		}
		return send(stream, b)
	}
	cms := cs.CoreV1().ConfigMaps(*namespace)
	for {
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for i := range list.Items {
			if err := emit('A', &list.Items[i]); err != nil {
				return err
			}
		}
		if err := send(stream, []byte{'S'}); err != nil {
			return err
		}
		// Watch from the list until the API server ends the watch with an
		// error (then list again); a plain timeout resumes where it was.
		rv, timeout := list.ResourceVersion, int64(3600)
		for broken := false; !broken; {
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &timeout})
			if err != nil {
				break
			}
			for ev := range w.ResultChan() {
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if !ok {
					broken = true
					break
				}
				rv = cm.ResourceVersion
				kind := byte('A')
				if ev.Type == watch.Deleted {
					kind = 'D'
				}
				if err := emit(kind, cm); err != nil {
					return err
				}
			}
			w.Stop()
		}
	}
}

type stored struct {
	rv   uint64
	data []byte
}

// readServer is the map of the latest objects and the readers waiting for
// them.
type readServer struct {
	mu      sync.Mutex
	ready   bool // an agent's stream is open and its first list is in
	objects map[string]stored
	waiters map[string][]chan struct{} // closed when the name changes
}

func readServerMain(args []string) error {
	fs := flag.NewFlagSet("read-server", flag.ExitOnError)
	grpcAddr := fs.String("grpc", "", "gRPC listen address")
	httpAddr := fs.String("http", "", "HTTP listen address")
	_ = fs.Parse(args)
	s := &readServer{objects: map[string]stored{}, waiters: map[string][]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ready := s.ready
		s.mu.Unlock()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /objects/{name}", s.get)
	return serve(*grpcAddr, *httpAddr, s.ingest, mux)
}

// ingest applies the agent's events to the map as they arrive.
func (s *readServer) ingest(stream grpc.ServerStream) error {
	defer func() { s.mu.Lock(); s.ready = false; s.mu.Unlock() }()
	for {
		b, err := recv(stream)
		if err != nil {
			return err
		}
		kind, name, rv, data, err := decodeEvent(b)
		if err != nil {
			return err
		}
		s.mu.Lock()
		switch kind {
		case 'S':
			s.ready = true
		case 'D':
			delete(s.objects, name)
		default:
			s.objects[name] = stored{rv: rv, data: data}
		}
		for _, ch := range s.waiters[name] {
			close(ch)
		}
		delete(s.waiters, name)
		s.mu.Unlock()
	}
}

// get answers GET /objects/NAME?waitMs=MS&minResourceVersion=RV with the
// object once it is there (at RV or later), or 404 after waitMs.
func (s *readServer) get(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	minRV, _ := strconv.ParseUint(r.URL.Query().Get("minResourceVersion"), 10, 64)
	waitMs, _ := strconv.Atoi(r.URL.Query().Get("waitMs"))
	timer := time.NewTimer(time.Duration(waitMs) * time.Millisecond)
	defer timer.Stop()
	for {
		s.mu.Lock()
		o, ok := s.objects[name]
		if ok && o.rv >= minRV {
			s.mu.Unlock()
			w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
			_, _ = w.Write(o.data)
			return
		}
		ch := make(chan struct{})
		s.waiters[name] = append(s.waiters[name], ch)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			http.NotFound(w, r)
			return
		case <-r.Context().Done():
			return
		}
	}
}
