package store

import (
	"context"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// A duplicate key is worth retrying inside a transaction (its read may
// have lost a race) but final for a single statement (exec): retryTx
// retries the one and not the other.
func TestRetryTxStopsAtPermanentErrors(t *testing.T) {
	dup := &mysql.MySQLError{Number: mysqlErrDupEntry, Message: "Duplicate entry 'x' for key 'PRIMARY'"}
	attempts := 0
	err := retryTx(context.Background(), func() error {
		attempts++
		return permanentTxError{dup}
	})
	if attempts != 1 || !errors.Is(err, dup) {
		t.Errorf("permanent: %d attempts, error %v; want 1 attempt and the duplicate", attempts, err)
	}
	attempts = 0
	err = retryTx(context.Background(), func() error {
		attempts++
		if attempts < 3 {
			return dup
		}
		return nil
	})
	if attempts != 3 || err != nil {
		t.Errorf("retryable: %d attempts, error %v; want 3 attempts and success", attempts, err)
	}
}
