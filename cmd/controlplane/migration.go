package main

import (
	"fmt"
	"log/slog"

	"github.com/kubesvc/kubesvc/internal/cdaccounts"
	"github.com/kubesvc/kubesvc/internal/controlplane"
	"github.com/kubesvc/kubesvc/internal/controlplane/cpconfig"
	"github.com/kubesvc/kubesvc/internal/dynaccounts"
	"github.com/kubesvc/kubesvc/internal/store"
)

// extendMigration registers the migration of Clouddriver's accounts (the
// accounts-table scan and the /credentials interceptor) when the
// configuration asks for it. Both feed mgr's lifecycle, so they act only
// with kubesvc.dynamicAccounts.enabled.
func extendMigration(srv *controlplane.Server, st store.Store, mgr *dynaccounts.Manager, cfg *cpconfig.Config, log *slog.Logger) error {
	d := cfg.DynamicAccounts
	if len(d.NamePatterns) == 0 && !d.InterceptorEnabled {
		return nil
	}
	log = log.With("component", "cdaccounts")
	if !d.Enabled {
		log.Warn("kubesvc.dynamicAccounts.namePatterns / interceptor.enabled have no effect while kubesvc.dynamicAccounts.enabled is false")
		return nil
	}
	db := d.ClouddriverDatabase
	dsnOrPath := db.DSN
	if db.Driver == cpconfig.DriverSQLite {
		dsnOrPath = db.Path
	}
	cd, err := cdaccounts.OpenDB(string(db.Driver), dsnOrPath)
	if err != nil {
		return fmt.Errorf("kubesvc.dynamicAccounts.clouddriverDatabase: %w", err)
	}
	svc, err := cdaccounts.New(cdaccounts.Config{
		NamePatterns: d.NamePatterns, ScanFrequency: d.ScanFrequency, ScanBatchSize: d.ScanBatchSize,
		Interceptor: d.InterceptorEnabled, ClouddriverURL: d.ClouddriverURL, ReplicaID: cfg.ID, Log: log,
	}, cd, st, mgr)
	if err != nil {
		_ = cd.Close()
		return fmt.Errorf("kubesvc.dynamicAccounts: %w", err)
	}
	srv.Extend(svc) // its Run closes cd
	return nil
}
