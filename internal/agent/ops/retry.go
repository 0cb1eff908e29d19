package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// retryable reports whether err, returned by an API request, is worth
// another attempt under the configured retries.
func (e *Executor) retryable(err error) bool {
	var (
		p  permanent
		ve *ValidationError
	)
	switch {
	case err == nil, errors.As(err, &p), errors.As(err, &ve),
		errors.Is(err, context.Canceled):
		return false
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsInternalError(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= 500 {
		return true
	}
	if e.retries.RetryAnyError {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range e.retries.RetryableErrors {
		if s != "" && strings.Contains(msg, strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// do runs fn, retrying it as configured. fn must be safe to repeat: it
// re-reads what it needs on every attempt.
func (e *Executor) do(ctx context.Context, what string, fn func(context.Context) error) error {
	return e.attempt(ctx, what, e.retryable, fn)
}

// doOnce runs fn, a request not safe to send twice (a JSON patch that adds
// to a list or removes a key): as configured, but retried only after the
// errors that prove it was not applied (409 Conflict, 429 Too Many
// Requests), never after a timeout or a 5xx, after which it may have been.
func (e *Executor) doOnce(ctx context.Context, what string, fn func(context.Context) error) error {
	return e.attempt(ctx, what, func(err error) bool {
		return e.retryable(err) && (apierrors.IsConflict(err) || apierrors.IsTooManyRequests(err))
	}, fn)
}

func (e *Executor) attempt(ctx context.Context, what string, retryable func(error) bool, fn func(context.Context) error) error {
	attempts := 1
	if e.retries.Enabled {
		attempts += e.retries.MaxRetries
	}
	var err error
	for i := range attempts {
		if i > 0 {
			e.opts.Logger.Info("retrying Kubernetes request", "request", what, "attempt", i+1, "error", err)
			t := time.NewTimer(e.retries.BackOff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w (retry abandoned: %w)", what, err, ctx.Err())
			case <-t.C:
			}
		}
		err = fn(ctx)
		if err == nil {
			return nil
		}
		if !e.retries.Enabled || !retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempts, err)
}
