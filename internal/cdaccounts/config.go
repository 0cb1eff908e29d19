package cdaccounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"time"

	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

// Defaults of the scan: the values the Armory Scale Agent documents for
// dynamicAccounts.scanFrequencySeconds and scanBatchSize
// (service-config-options.csv).
const (
	DefaultScanFrequency = 120 * time.Second
	DefaultScanBatchSize = 572
)

// ScanLease names the lease the scanning replica holds (kubesvc_leases).
const ScanLease = "clouddriver-accounts-scan"

// Config configures the migration (kubesvc.dynamicAccounts.*).
type Config struct {
	// NamePatterns: accounts whose name matches one of them (unanchored
	// RE2, as regexp.MatchString) are migrated; none: no scan.
	NamePatterns []string
	// ScanFrequency: time between two scans. Default DefaultScanFrequency.
	ScanFrequency time.Duration
	// ScanBatchSize: accounts migrated or updated per scan at most.
	// Default DefaultScanBatchSize.
	ScanBatchSize int
	// LeaseTTL: how long the scanning replica's lease lasts without
	// renewal; another replica takes over after it. Default
	// 2 x ScanFrequency + 30s.
	LeaseTTL time.Duration
	// Interceptor serves Clouddriver's /credentials endpoints.
	Interceptor bool
	// ClouddriverURL, when set, is where requests for accounts that are
	// not Kubernetes accounts are proxied (Clouddriver's base URL).
	ClouddriverURL string
	// ReplicaID names this replica as the holder of the scan lease.
	ReplicaID string
	Log       *slog.Logger
	// Now is the clock for the tables' timestamps; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.ScanFrequency <= 0 {
		c.ScanFrequency = DefaultScanFrequency
	}
	if c.ScanBatchSize <= 0 {
		c.ScanBatchSize = DefaultScanBatchSize
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2*c.ScanFrequency + 30*time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Lifecycle is what the migration needs of the Dynamic Accounts manager
// (*dynaccounts.Manager): every account it takes goes through the same
// lifecycle as one created with the REST API.
type Lifecycle interface {
	Enabled() bool
	CheckCredentials(ctx context.Context, d dynaccounts.Definition) error
	Import(ctx context.Context, d dynaccounts.Definition) (store.Account, error)
	Activate(ctx context.Context, d dynaccounts.Definition) (created bool, err error)
	Update(ctx context.Context, d dynaccounts.Definition) error
	Deactivate(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
}

// Store is what the migration needs of the control plane's store.
type Store interface {
	store.Accounts
	store.Leases
	store.MigratedAccounts
}

// compilePatterns compiles the name patterns; an error names the index.
func compilePatterns(patterns []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(patterns))
	for i, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("namePatterns[%d]: %w", i, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// parseURL checks the Clouddriver URL (absolute http or https).
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("clouddriverUrl: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("clouddriverUrl: an absolute http or https URL is expected")
	}
	return u, nil
}
