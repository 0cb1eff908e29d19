package cpconfig

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DataSize is a number of bytes, written in YAML either as an integer (bytes)
// or as a number with a unit, as Spring Boot's DataSize: B, KB, MB, GB, TB,
// with 1KB = 1024 bytes, and the IEC spellings KiB, MiB, GiB, TiB with the
// same values. Units are case-insensitive; a space before the unit is
// allowed. "4MB", "4MiB" and 4194304 are the same size.
type DataSize int64

var dataUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1 << 10, "kib": 1 << 10,
	"mb": 1 << 20, "mib": 1 << 20,
	"gb": 1 << 30, "gib": 1 << 30,
	"tb": 1 << 40, "tib": 1 << 40,
}

// ParseDataSize parses a data size such as "4MB", "16MiB", "512 KB" or
// "1048576" (bytes).
func ParseDataSize(s string) (DataSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := dataUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("expected a data size such as 4MB, 16MiB or a number of bytes, got %q", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("data size %q is too large", s)
	}
	return DataSize(n * unit), nil
}

// UnmarshalStrictYAML implements yamlstrict.Unmarshaler.
func (d *DataSize) UnmarshalStrictYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		return fmt.Errorf("expected a data size such as 4MB, 16MiB or a number of bytes, got %s", describe(n))
	}
	if n.ShortTag() == "!!int" { // bytes, in any YAML integer notation (0x10000)
		var i int64
		if err := n.Decode(&i); err != nil || i < 0 {
			return fmt.Errorf("expected a data size such as 4MB, 16MiB or a number of bytes, got %q", n.Value)
		}
		*d = DataSize(i)
		return nil
	}
	v, err := ParseDataSize(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// String formats the size with the largest binary unit that divides it
// exactly: 4194304 is "4MB", 1500 is "1500B".
func (d DataSize) String() string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if d != 0 && int64(d)%u.size == 0 {
			return fmt.Sprintf("%d%s", int64(d)/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(d))
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}
