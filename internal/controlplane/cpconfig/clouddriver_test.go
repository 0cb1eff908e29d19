package cpconfig

import (
	"reflect"
	"testing"
	"time"
)

// The migration keys: defaults from the Scale Agent's documentation, the
// Clouddriver database falling back to sql.*, and explicit values.
func TestClouddriverMigrationKeys(t *testing.T) {
	c, _, err := loadString(t, `
kubesvc:
  dynamicAccounts:
    enabled: true
    scanFrequencySeconds: 30
    scanBatchSize: 5
    namePatterns: ['^apple.*', 'depot']
    interceptor: {enabled: true, clouddriverUrl: 'http://spin-clouddriver:7002'}
    clouddriverDatabase: {driver: MySQL, dsn: 'cd:pw@tcp(db:3306)/clouddriver'}
sql: {driver: postgres, dsn: 'postgres://u@db/kubesvc'}
`[1:])
	if err != nil {
		t.Fatal(err)
	}
	d := c.DynamicAccounts
	want := DynamicAccounts{Enabled: true, RetryFrequency: 5 * time.Second, MaxRetries: 3, ScanFrequency: 30 * time.Second,
		ScanBatchSize: 5, NamePatterns: []string{"^apple.*", "depot"}, InterceptorEnabled: true,
		ClouddriverURL:      "http://spin-clouddriver:7002",
		ClouddriverDatabase: SQL{Driver: DriverMySQL, DSN: "cd:pw@tcp(db:3306)/clouddriver"}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("dynamicAccounts =\n %+v\nwant\n %+v", d, want)
	}
	if len(c.Unsupported) != 0 {
		t.Errorf("Unsupported = %q: the migration keys are implemented", c.Unsupported)
	}

	c, _, err = loadString(t, "sql: {driver: mysql, dsn: 'u@tcp(db)/kubesvc'}\n")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.DynamicAccounts; d.ClouddriverDatabase != c.SQL || d.ScanFrequency != DefaultScanFrequency || d.ScanBatchSize != DefaultScanBatchSize {
		t.Errorf("defaults: %+v (sql %+v)", d, c.SQL)
	}
}
