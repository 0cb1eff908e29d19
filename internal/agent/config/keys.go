package config

import (
	"reflect"
	"strings"
)

// suggest returns the known key of struct type t closest to key, if close.
func suggest(t reflect.Type, key string) string {
	best, bestDist := "", 3
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		for _, name := range []string{f.Tag.Get("yaml"), f.Tag.Get("alias")} {
			if name == "" {
				continue
			}
			if strings.EqualFold(name, key) {
				return name
			}
			if dist := levenshtein(strings.ToLower(name), strings.ToLower(key)); dist < bestDist && len(key) > 3 {
				best, bestDist = name, dist
			}
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// genericKey replaces list indexes by [] (kubernetes.accounts[3].x -> kubernetes.accounts[].x).
func genericKey(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
			b.WriteString("[]")
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsupportedKey reports whether a key is documented for the Armory agent
// but not implemented here. Such keys (and anything below them) are accepted
// and listed in Config.Unsupported rather than rejected.
func unsupportedKey(generic string) bool {
	switch generic {
	case "logging.multiWrite", "logging.maxSizeMb", "logging.maxAgeDays", "logging.maxBackups",
		"logging.localTime", "logging.compress", "logging.fields",
		"server.ssl", "secrets", "tasks.queueCheckFrequencyMs", "dynamicAccounts",
		"kubernetes.accounts[].oAuthScopes", "kubernetes.accounts[].onlySpinnakerManaged":
		return true
	}
	return false
}
