// Package httpapitest helps tests of the REST handlers check what a
// request waiting in a handler gets when the control plane shuts down.
package httpapitest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Answer is what a request got: its status, body, or error.
type Answer struct {
	Code int
	Body string
	Err  error
}

// Get sends a GET to url in the background; its answer arrives on the
// channel once the body is read.
func Get(url string) <-chan Answer {
	got := make(chan Answer, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			got <- Answer{Err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- Answer{Code: resp.StatusCode, Body: string(b), Err: err}
	}()
	return got
}

// WantShuttingDown waits up to 10 s for the answer and checks it is the
// 503 of a shutdown: a JSON error whose message says the control plane is
// shutting down.
func WantShuttingDown(t testing.TB, got <-chan Answer) {
	t.Helper()
	var a Answer
	select {
	case a = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10 s after shutdown began")
	}
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	var e struct {
		Message string `json:"message"`
	}
	if a.Code != http.StatusServiceUnavailable || json.Unmarshal([]byte(a.Body), &e) != nil || !strings.Contains(e.Message, "shutting down") {
		t.Errorf("answer %d %q; want 503 with a JSON error saying the control plane is shutting down", a.Code, a.Body)
	}
}
