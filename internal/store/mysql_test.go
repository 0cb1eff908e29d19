package store_test

import (
	"testing"

	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

func TestMySQLConformance(t *testing.T)           { runConformance(t, storetest.MySQL()) }
func TestMySQLReopen(t *testing.T)                { runReopen(t, storetest.MySQL()) }
func TestMySQLMigrations(t *testing.T)            { runMigrations(t, storetest.MySQL()) }
func TestMySQLInterruptedMigrations(t *testing.T) { runInterruptedMigrations(t, storetest.MySQL()) }
func TestMySQLKeyLengths(t *testing.T)            { runKeyLengths(t, storetest.MySQL()) }
func TestMySQLSameStreamWriters(t *testing.T)     { runSameStreamWriters(t, storetest.MySQL()) }
func TestMySQLLateFencedBatch(t *testing.T)       { runLateFencedBatch(t, storetest.MySQL()) }
