package agent

import (
	"math"
	"testing"
	"time"
)

func TestRetryDelayBounds(t *testing.T) {
	t.Parallel()
	const samples = 2000
	for _, failures := range []int{1, 2, 3, 4, 5, 6, 7, 8, 20, 1000, math.MaxInt32} {
		nominal := min(time.Second<<min(failures-1, 6), time.Minute)
		lo, hi := nominal/2, nominal
		var gotMin, gotMax time.Duration = math.MaxInt64, 0
		for range samples {
			d := retryDelay(failures)
			if d < lo || d > hi {
				t.Fatalf("retryDelay(%d) = %s, want within [%s, %s]", failures, d, lo, hi)
			}
			gotMin, gotMax = min(gotMin, d), max(gotMax, d)
		}
		// Jitter spreads the whole range: with 2,000 uniform samples both
		// outer quarters are hit (failure odds about 2^-800).
		q := (hi - lo) / 4
		if gotMin > lo+q || gotMax < hi-q {
			t.Errorf("retryDelay(%d): samples span only [%s, %s] of [%s, %s]", failures, gotMin, gotMax, lo, hi)
		}
	}
	// The documented envelope: from 1s (half of it with jitter) to 60s.
	for range samples {
		if d := retryDelay(1); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("first retry after %s", d)
		}
		if d := retryDelay(100); d < 30*time.Second || d > time.Minute {
			t.Fatalf("retry after %s exceeds the 60s cap or its jitter", d)
		}
	}
}

func TestBackoffDelayBoundsWithJitter(t *testing.T) {
	t.Parallel()
	b := Backoff{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 120 * time.Second}
	a := &Agent{cfg: Config{Backoff: b}}
	const samples = 4000
	for _, attempt := range []int{1, 2, 3, 5, 10, 11, 12, 50, 10_000} {
		nominal := min(float64(b.BaseDelay)*math.Pow(b.Multiplier, float64(attempt-1)), float64(b.MaxDelay))
		lo, hi := nominal*(1-b.Jitter), nominal*(1+b.Jitter)
		var sum float64
		gotMin, gotMax := math.Inf(1), math.Inf(-1)
		for range samples {
			d := float64(a.backoffDelay(attempt))
			// One nanosecond of slack for the float->Duration truncation.
			if d < lo-1 || d > hi+1 {
				t.Fatalf("backoffDelay(%d) = %s, want within [%s, %s]", attempt, time.Duration(d), time.Duration(lo), time.Duration(hi))
			}
			sum += d
			gotMin, gotMax = min(gotMin, d), max(gotMax, d)
		}
		// Uniform jitter: the mean is the nominal delay (standard error
		// 0.2/sqrt(3)/sqrt(4000) ~ 0.18%; allow 2%) and the samples reach
		// both outer quarters of the jitter range.
		if mean := sum / samples; math.Abs(mean-nominal)/nominal > 0.02 {
			t.Errorf("backoffDelay(%d): mean %s, want about %s", attempt, time.Duration(mean), time.Duration(nominal))
		}
		q := (hi - lo) / 4
		if gotMin > lo+q || gotMax < hi-q {
			t.Errorf("backoffDelay(%d): samples span only [%s, %s] of [%s, %s]", attempt, time.Duration(gotMin), time.Duration(gotMax), time.Duration(lo), time.Duration(hi))
		}
	}
	// gRPC semantics: the cap applies before jitter, so no delay exceeds
	// MaxDelay*(1+Jitter), and none is ever below BaseDelay*(1-Jitter).
	for attempt := 1; attempt < 200; attempt++ {
		d := a.backoffDelay(attempt)
		if d > time.Duration(float64(b.MaxDelay)*(1+b.Jitter))+1 || d < time.Duration(float64(b.BaseDelay)*(1-b.Jitter))-1 {
			t.Fatalf("backoffDelay(%d) = %s out of [%s, %s]", attempt, d, time.Duration(float64(b.BaseDelay)*(1-b.Jitter)), time.Duration(float64(b.MaxDelay)*(1+b.Jitter)))
		}
	}
}

func TestBackoffDelayWithoutJitterIsExact(t *testing.T) {
	t.Parallel()
	a := &Agent{cfg: Config{Backoff: Backoff{BaseDelay: 100 * time.Millisecond, Multiplier: 2, MaxDelay: time.Second}}}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := a.backoffDelay(i + 1); got != w*time.Millisecond {
			t.Errorf("backoffDelay(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
}

func TestNewDefaultsBackoff(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Target: "127.0.0.1:1", ID: "x", ZoneID: "z"})
	if err != nil {
		t.Fatal(err)
	}
	want := Backoff{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 120 * time.Second}
	if a.cfg.Backoff != want {
		t.Errorf("default backoff %+v, want %+v", a.cfg.Backoff, want)
	}
	if a.cfg.TotalBudget != 32 || a.cfg.BudgetPerAccount != 8 {
		t.Errorf("default budgets %d/%d, want 32/8", a.cfg.TotalBudget, a.cfg.BudgetPerAccount)
	}
}
