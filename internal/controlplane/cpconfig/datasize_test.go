package cpconfig

import (
	"strings"
	"testing"
)

func TestParseDataSize(t *testing.T) {
	for in, want := range map[string]DataSize{
		"0":       0,
		"1048576": 1 << 20,
		"100B":    100,
		"4MB":     4 << 20,
		"4mb":     4 << 20,
		"4 MB":    4 << 20,
		" 16MiB ": 16 << 20,
		"512KB":   512 << 10,
		"512kib":  512 << 10,
		"1GB":     1 << 30,
		"2GiB":    2 << 30,
		"1TB":     1 << 40,
		"3TiB":    3 << 40,
	} {
		got, err := ParseDataSize(in)
		if err != nil || got != want {
			t.Errorf("ParseDataSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                      "expected a data size",
		"MB":                    "expected a data size",
		"-1":                    "expected a data size",
		"1.5MB":                 "expected a data size",
		"4M":                    "expected a data size",
		"4 PB":                  "expected a data size",
		"4MB4":                  "expected a data size",
		"99999999999999999999":  "too large",
		"9999999999999999999TB": "too large",
		"8388608TB":             "too large",
	} {
		if _, err := ParseDataSize(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseDataSize(%q) err = %v, want %q", in, err, msg)
		}
	}
}

func TestDataSizeString(t *testing.T) {
	for in, want := range map[DataSize]string{0: "0B", 1500: "1500B", 1024: "1KB", 4 << 20: "4MB", 3 << 30: "3GB", 1 << 40: "1TB", 1<<20 + 1: "1048577B"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestDataSizeYAML(t *testing.T) {
	for doc, want := range map[string]int{
		"kubesvc: {grpc: {server: {maxInboundMessageSize: 16MiB}}}\n":    16 << 20,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: 131072}}}\n":   128 << 10,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: '8 MB'}}}\n":   8 << 20,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: 0x20000}}}\n":  128 << 10,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: -65536}}}\n":   0, // rejected
		"kubesvc: {grpc: {server: {maxInboundMessageSize: 1e6}}}\n":      0, // rejected
		"kubesvc.grpc.server.maxInboundMessageSize: 1GB\n":               1 << 30,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: null}}}\n":     4 << 20,
		"kubesvc: {grpc: {server: {maxInboundMessageSize: ~, port: 1}}}": 4 << 20,
	} {
		c, _, err := loadString(t, doc)
		if want == 0 {
			if err == nil {
				t.Errorf("%q: no error", doc)
			}
			continue
		}
		if err != nil || c.GRPC.MaxInboundMessageSize != want {
			t.Errorf("%q: %v, %v; want %d", doc, c, err, want)
		}
	}
}
