package cpconfig

import (
	"maps"
	"reflect"
	"slices"

	"github.com/kubesvc/kubesvc/internal/yamlstrict"
)

// unsupportedKeys are documented for the Armory plugin but not modelled
// here: they (and everything below them) are accepted and listed in
// Config.Unsupported. Most make sense only inside Clouddriver (the V2
// provider, Java thread pools, Spring cron expressions).
var unsupportedKeys = []string{
	"kubesvc.cache.cacheDefaults",
	"kubesvc.cache.cacheStreamingPoolCoreSize",
	"kubesvc.cache.cacheStreamingPoolMaxSize",
	"kubesvc.credentials",
	"kubesvc.disableV2Provider",
	"kubesvc.jobs.operation-history.purge.cron",
	"kubesvc.operations",
	"kubesvc.ops",
	"kubesvc.runtime",
	"kubesvc.v2-cache-eviction",
}

func isUnsupportedKey(key string) bool { return slices.Contains(unsupportedKeys, key) }

// notImplemented are modelled keys whose feature is not built yet. When set
// in a file they are listed in Config.Unsupported, unless honoured reports
// that the value asks for what this build does anyway. Remove a key here
// when its feature lands (docs/controlplane-config.md's "implemented" column follows this
// table; a test checks it).
var notImplemented = map[string]func(c *Config) bool{
	"kubesvc.cache.onDemandQuickWaitMs":           nil,
	"kubesvc.cache.eventsCleanupFrequencySeconds": nil,
	"kubesvc.cache.namespaceExpiryMinutes":        func(c *Config) bool { return c.Cache.NamespaceExpiry == 0 },
	"kubesvc.cache.cleanDataWithUnusedAccounts":   nil,
	"kubesvc.cache.cacheKinds":                    nil,
	"kubesvc.loadBalancer":                        nil,
}

// unsupported returns the keys for Config.Unsupported: those accepted as
// unmodelled and those set but not implemented, sorted.
func unsupported(f *File, c *Config) []string {
	set := map[string]bool{}
	for _, k := range f.dec.Unsupported() {
		set[k] = true
	}
	for k, honoured := range notImplemented {
		if f.IsSet(k) && (honoured == nil || !honoured(c)) {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(set))
}

// Keys returns every key the configuration file models (dotted paths), in
// the order of the File struct. Documented keys accepted without a model are
// not included.
func Keys() []string { return yamlstrict.Keys(reflect.TypeFor[File]()) }
