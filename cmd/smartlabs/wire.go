package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/rs/zerolog"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/keys"
	"smartlabs/server/metrics"
	"smartlabs/server/session"
	"smartlabs/server/smart"
)

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve: --config FILE is required")
	}
	cfg, err := config.LoadFile(*path, getenv)
	if err != nil {
		return err
	}
	app, err := newApp(cfg, getenv, stderr)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "smartlabs %s listening on %s (public URL %s)\n", version(), ln.Addr(), cfg.PublicURL)
	if cfg.MetricsListen == "" {
		return serveUntilDone(ctx, ln, app.handler)
	}
	return serveWithMetrics(ctx, ln, app, cfg.MetricsListen, stdout)
}

// app is a wired server and what must be closed with it.
type app struct {
	handler http.Handler
	// metrics is nil unless metrics_listen is set.
	metrics *metrics.Metrics
	closers []func()
}

func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires the server from a validated config; getenv supplies
// SSL_CERT_FILE, the extra CA certificates outbound requests trust.
func newApp(cfg *config.Config, getenv func(string) string, stderr io.Writer) (*app, error) {
	a := &app{}
	roots, err := rootCAs(getenv)
	if err != nil {
		return nil, err
	}
	logger := zerolog.New(stderr).With().Timestamp().Str("service", "smartlabs").Logger()
	audit, closeAudit, err := openAudit(cfg.AuditLog, stderr)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, closeAudit)

	ks := map[string]*keys.Key{}
	var problems []string
	for i, is := range cfg.Issuers {
		if is.PrivateKeyFile == "" {
			continue
		}
		k, err := keys.Load(is.PrivateKeyFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("issuers[%d].private_key_file: %v", i, err))
			continue
		}
		if p := k.FilePerm(); p.Warning != "" {
			logger.Warn().Str("issuer", is.Name).Str("file", is.PrivateKeyFile).Str("mode", p.String()).
				Msgf("private key file is %s; 0600 or 0400 unless a group must read it (Kubernetes fsGroup)", p.Warning)
		}
		ks[is.ISS] = k
	}
	published, keyProblems := loadPublishedKeys(cfg)
	problems = append(problems, keyProblems...)
	if len(problems) > 0 {
		return nil, &config.ValidationError{Problems: problems}
	}
	if cfg.MetricsListen != "" {
		a.metrics = newMetrics(cfg)
	}

	var store scs.Store
	var kv session.KV
	switch cfg.Session.Store {
	case "redis":
		// One client for both stores, so /readyz's KV ping also vouches for the scs store.
		rc, err := session.NewRedisClient(cfg.Session.RedisURL.Value())
		if err != nil {
			return nil, &config.ValidationError{Problems: []string{"session.redis_url: not a valid Redis URL"}}
		}
		a.closers = append(a.closers, func() { rc.Close() })
		store, kv = session.NewRedisStores(rc)
	default:
		ms := memstore.New()
		mkv := session.NewMemoryKV()
		// memstore's cleanup goroutine lives as long as the process: its
		// StopCleanup races with the goroutine's start (scs v2.9.0).
		a.closers = append(a.closers, mkv.Close)
		store, kv = ms, mkv
	}

	var srv *server.Server
	sessions := session.NewManager(session.Options{
		IdleTimeout: cfg.Session.IdleTimeout, Lifetime: cfg.Session.Lifetime,
		ScsStore: store, KV: kv,
		ErrorFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			a.metrics.SessionStoreError()
			srv.StoreError(w, r, err)
		},
	})
	hc := newHTTPClient(roots)
	// Every FHIR and token request is measured (latency, outcome) on its way out.
	hc.Transport = a.metrics.Transport(hc.Transport)
	srv = server.New(server.Deps{
		Config:        cfg,
		Logger:        logger,
		Audit:         server.NewAudit(audit),
		Sessions:      sessions,
		SMART:         smart.NewClient(smart.Options{HTTPClient: hc, DiscoveryTTL: cfg.FHIR.DiscoveryTTL}),
		HTTPClient:    hc,
		Keys:          ks,
		PublishedKeys: published,
		Metrics:       a.metrics,
		Version:       version(),
	})
	a.handler = srv
	return a, nil
}

// newHTTPClient is the one pooled client for every outbound request. No
// client-wide timeout: each request carries its own deadline. Nil roots
// means the system's CA certificates.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	tr.MaxIdleConnsPerHost = 32
	tr.ForceAttemptHTTP2 = true
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{
		Transport: tr,
		// Redirects are not followed: a FHIR or OAuth server that redirects
		// could otherwise send our bearer token to a host we never checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// rootCAs returns the system's CA certificates plus those in the file named
// by SSL_CERT_FILE (a private CA: an internal FHIR server, the EHR simulator),
// or nil when it is unset. Go reads SSL_CERT_FILE from the process
// environment as well; reading it here makes a missing or empty file stop
// smartlabs at start, instead of every TLS handshake failing later.
func rootCAs(getenv func(string) string) (*x509.CertPool, error) {
	f := getenv("SSL_CERT_FILE")
	if f == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("SSL_CERT_FILE: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("SSL_CERT_FILE: no PEM certificate in %s", f)
	}
	return pool, nil
}

func openAudit(path string, stderr io.Writer) (zerolog.Logger, func(), error) {
	if path == "" || path == "-" {
		return zerolog.New(stderr).With().Str("log", "audit").Logger(), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return zerolog.Logger{}, nil, &config.ValidationError{Problems: []string{"audit_log: " + err.Error()}}
	}
	return zerolog.New(f), func() { f.Close() }, nil
}

// listener is one address and what it serves.
type listener struct {
	ln net.Listener
	h  http.Handler
}

// serveTogether serves every listener until ctx ends or one of them fails,
// then stops them all, draining in-flight requests.
func serveTogether(ctx context.Context, ls ...listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- serveUntilDone(ctx, l.ln, l.h) }()
	}
	var errs []error
	for range ls {
		err := <-errc
		cancel()
		if !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serveUntilDone serves h on ln until ctx ends, then drains in-flight requests.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return errors.New("usage: smartlabs keys new --out DIR [--alg RS384|ES384] [--bits 2048]")
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the key files to")
	bits := fs.Int("bits", 2048, "RSA key size (2048 or more)")
	alg := fs.String("alg", "RS384", "RS384 (RSA, the default) or ES384 (ECDSA P-384)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("keys new: --out DIR is required")
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	files, err := keys.WriteNewAlg(*out, *alg, *bits)
	if err != nil {
		return err
	}
	printKeyFiles(stdout, files, *alg)
	return nil
}

// writeNewKey writes a fresh key pair into dir and returns the private key's path.
func writeNewKey(dir string) (string, error) {
	f, err := keys.WriteNew(dir, keys.MinBits)
	if err != nil {
		return "", err
	}
	return f.PrivateKey, nil
}
