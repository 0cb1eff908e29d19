package store_test

import (
	"testing"

	"github.com/kubesvc/kubesvc/internal/store/storetest"
)

func TestPostgresConformance(t *testing.T)       { runConformance(t, storetest.Postgres()) }
func TestPostgresReopen(t *testing.T)            { runReopen(t, storetest.Postgres()) }
func TestPostgresMigrations(t *testing.T)        { runMigrations(t, storetest.Postgres()) }
func TestPostgresKeyLengths(t *testing.T)        { runKeyLengths(t, storetest.Postgres()) }
func TestPostgresSameStreamWriters(t *testing.T) { runSameStreamWriters(t, storetest.Postgres()) }
func TestPostgresLateFencedBatch(t *testing.T)   { runLateFencedBatch(t, storetest.Postgres()) }
