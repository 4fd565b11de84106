package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/keys"
	"smartlabs/server/metrics"
)

// loadPublishedKeys reads every issuer's extra_public_keys, the keys the JWKS
// publishes beside the signing keys during a rotation.
func loadPublishedKeys(cfg *config.Config) ([]*keys.PublicKey, []string) {
	var out []*keys.PublicKey
	var problems []string
	for i, is := range cfg.Issuers {
		for j, f := range is.ExtraPublicKeys {
			ps, err := keys.LoadPublic(f)
			if err != nil {
				problems = append(problems, fmt.Sprintf("issuers[%d].extra_public_keys[%d]: %v", i, j, err))
				continue
			}
			out = append(out, ps...)
		}
	}
	return out, problems
}

// newMetrics creates the metrics for cfg's issuers, labelled with this build.
func newMetrics(cfg *config.Config) *metrics.Metrics {
	b := server.ReadBuildInfo(version())
	return metrics.New(metrics.Options{
		Issuers: cfg.Issuers, Version: b.Version, GoVersion: b.GoVersion, Revision: b.Revision,
	})
}

// serveWithMetrics serves the app on ln and /metrics on metricsAddr until ctx
// ends. Metrics have their own listener so they are never reachable through
// the public URL: bind it to a private interface.
func serveWithMetrics(ctx context.Context, ln net.Listener, a *app, metricsAddr string, stdout io.Writer) error {
	mln, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", mln.Addr())
	return serveTogether(ctx, listener{mln, mux}, listener{ln, a.handler})
}

// printKeyFiles tells the operator what each new file is for.
func printKeyFiles(w io.Writer, f keys.Files, alg string) {
	fmt.Fprintf(w, "new %s key, kid %s\n", alg, f.KeyID)
	fmt.Fprintf(w, "  %s  private key (mode 0600): set private_key_file to it; never share it\n", f.PrivateKey)
	fmt.Fprintf(w, "  %s  base64 X.509 certificate: upload on Epic's app registration page\n", f.PublicKeyB64)
	fmt.Fprintf(w, "  %s  the same certificate in PEM\n", f.PublicKeyPEM)
	fmt.Fprintf(w, "  %s  JWKS entry: list it in extra_public_keys to publish the key before use\n", f.JWKS)
}
