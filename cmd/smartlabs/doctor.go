package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/doctor"
)

// runDoctor handles "smartlabs doctor": it checks every issuer of the config
// (or, with --backend NAME, one backend-services registration), prints a
// table and fails when any check failed.
func runDoctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	backend := fs.String("backend", "", "check this backend_services entry instead of the issuers")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("doctor: --config FILE is required")
	}
	cfg, err := config.LoadFile(*path, getenv)
	if err != nil {
		return err
	}
	// The doctor trusts what serve trusts, SSL_CERT_FILE included.
	roots, err := rootCAs(getenv)
	if err != nil {
		return err
	}
	opts := doctor.Options{Timeout: *timeout, HTTPClient: newHTTPClient(roots)}
	var rows []doctor.Row
	if *backend != "" {
		fmt.Fprintf(stdout, "Backend services check for %q: a separate app registration, not the clinician app's.\n\n", *backend)
		rows, err = doctor.CheckBackend(ctx, cfg, *backend, opts)
		if err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Checking %d issuer(s) from %s (public URL %s).\n\n", len(cfg.Issuers), *path, cfg.PublicURL)
		rows = doctor.CheckIssuers(ctx, cfg, opts)
	}
	if err := doctor.WriteTable(stdout, rows); err != nil {
		return err
	}
	if doctor.Failed(rows) {
		return errors.New("doctor: some checks failed")
	}
	return nil
}
