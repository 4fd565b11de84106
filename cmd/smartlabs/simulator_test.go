package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address nobody listens on at the moment, for
// a server whose own URL must be known before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// clientTrusting is an HTTPS client that trusts only the CA in caFile.
func clientTrusting(t *testing.T, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func envWith(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestSimulator runs `smartlabs simulator` over HTTPS with a CA it writes:
// clients that trust DIR/ca.pem reach its SMART discovery and launchpad,
// others fail the handshake, and a restart keeps the same certificate.
func TestSimulator(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	addr := freeAddr(t)
	base := "https://" + addr
	getenv := envWith(map[string]string{simSecretEnv: "sim-secret"})
	args := []string{"simulator", "--listen", addr, "--base-url", base, "--app-url", "https://smartlabs.example.org", "--tls-dir", dir}
	stdout, _, stop := startEnv(t, getenv, args...)
	waitFor(t, stdout, regexp.MustCompile(`(listening on)`))

	st, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v, %v; want mode 0600", st, err)
	}
	c := clientTrusting(t, filepath.Join(dir, "ca.pem"))
	resp, err := c.Get(base + "/fhir/R4/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Authorize string `json:"authorization_endpoint"`
		Token     string `json:"token_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || disc.Authorize != base+"/oauth2/authorize" || disc.Token != base+"/oauth2/token" {
		t.Fatalf("discovery: %d %+v %v", resp.StatusCode, disc, err)
	}
	resp, err = c.Get(base + "/hyperspace?patient=" + firstPatient(t, c, base))
	if err != nil {
		t.Fatal(err)
	}
	chart, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(chart), `src="https://smartlabs.example.org/launch?iss=`+url.QueryEscape(base+"/fhir/R4")+"&amp;launch=") {
		t.Errorf("chart page does not frame the app's Launch URL with this iss: %s", chart)
	}

	// A client without the simulator's CA refuses it.
	_, err = http.Get(base + "/fhir/R4/metadata")
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("client without the CA: %v, want an unknown-authority error", err)
	}

	// The doctor, like serve, trusts the simulator through SSL_CERT_FILE: every
	// check passes with it, and discovery is unreachable without it.
	cfg := filepath.Join(t.TempDir(), "smartlabs.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npublic_url: https://smartlabs.example.org\nissuers:\n  - iss: "+base+"/fhir/R4\n    client_id: smartlabs\n    client_secret: ${SMARTLABS_SIM_CLIENT_SECRET}\n"), 0o600)
	var report strings.Builder
	withCA := envWith(map[string]string{simSecretEnv: "sim-secret", "SSL_CERT_FILE": filepath.Join(dir, "ca.pem")})
	if err := run(context.Background(), []string{"doctor", "--config", cfg}, withCA, &report, io.Discard); err != nil {
		t.Errorf("doctor with SSL_CERT_FILE: %v\n%s", err, report.String())
	}
	report.Reset()
	if err := run(context.Background(), []string{"doctor", "--config", cfg}, getenv, &report, io.Discard); err == nil {
		t.Errorf("doctor without the simulator's CA passed:\n%s", report.String())
	}

	cert1, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err := stop(); err != nil {
		t.Fatalf("simulator returned %v", err)
	}
	stdout, _, _ = startEnv(t, getenv, args...)
	waitFor(t, stdout, regexp.MustCompile(`(listening on)`))
	cert2, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if string(cert1) != string(cert2) {
		t.Error("a restart wrote a new certificate: clients trusting ca.pem would break")
	}
	if resp, err := c.Get(base + "/fhir/R4/metadata"); err != nil || resp.StatusCode != 200 {
		t.Errorf("after restart: %v", err)
	}
}

func firstPatient(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`/hyperspace\?patient=([^"&]+)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("launchpad lists no patient: %s", b)
	}
	return m[1]
}

func TestSimulatorFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"nothing", nil, nil, []string{"--base-url", "--app-url", simSecretEnv}},
		{"no secret", []string{"--base-url", "https://ehr.example", "--app-url", "https://app.example"}, nil, []string{simSecretEnv}},
		{"relative base", []string{"--base-url", "/ehr", "--app-url", "https://app.example"}, map[string]string{simSecretEnv: "s"}, []string{"--base-url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"simulator"}, tt.args...), envWith(tt.env), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("simulator started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// TestRootCAs: SSL_CERT_FILE adds a private CA to what outbound requests
// trust; a missing or empty file stops the start, naming the variable.
func TestRootCAs(t *testing.T) {
	dir := t.TempDir()
	caPEM, certPEM, _, err := newCAAndLeaf([]string{"ehr.internal"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, caPEM, 0o644)
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o644)

	if pool, err := rootCAs(envWith(nil)); pool != nil || err != nil {
		t.Errorf("unset: %v, %v; want the system default (nil)", pool, err)
	}
	for _, f := range []string{filepath.Join(dir, "missing.pem"), empty} {
		if _, err := rootCAs(envWith(map[string]string{"SSL_CERT_FILE": f})); err == nil || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
			t.Errorf("SSL_CERT_FILE=%s: %v, want an error naming SSL_CERT_FILE", f, err)
		}
	}
	pool, err := rootCAs(envWith(map[string]string{"SSL_CERT_FILE": ca}))
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustParseCert(t, certPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "ehr.internal"}); err != nil {
		t.Errorf("a server certificate of the SSL_CERT_FILE CA is not trusted: %v", err)
	}
}

func mustParseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
