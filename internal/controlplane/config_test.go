package controlplane

import (
	"os"
	"testing"
)

// Without kubesvc.baseUrl, a replica advertises the host its REST API is
// bound to, or its host name when bound to every address.
func TestDefaultBaseURL(t *testing.T) {
	host, _ := os.Hostname()
	for addr, want := range map[string]string{
		"127.0.0.1:7002": "http://127.0.0.1:7002",
		"[::1]:7003":     "http://[::1]:7003",
		"10.1.2.3:0":     "http://10.1.2.3:7002",
		"cp.example:80":  "http://cp.example:80",
		":7002":          "http://" + host + ":7002",
		"0.0.0.0:7004":   "http://" + host + ":7004",
		"[::]:7005":      "http://" + host + ":7005",
	} {
		c := Config{HTTPAddr: addr}
		c.setDefaults()
		if c.BaseURL != want {
			t.Errorf("HTTPAddr %q: BaseURL %q, want %q", addr, c.BaseURL, want)
		}
	}
}
