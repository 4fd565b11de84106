package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smartlabs/server/ehrsim"
)

// simSecretEnv names the environment variable that holds the app's client
// secret at the simulator: a secret on the command line would show in ps.
const simSecretEnv = "SMARTLABS_SIM_CLIENT_SECRET"

// runSimulator handles "smartlabs simulator": the EHR simulator on its own,
// for a deployment where the app runs separately (deploy/compose.yaml). Unlike
// demo it wires no app: the app reaches it through its config like any EHR.
func runSimulator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9443", "address to bind")
	baseURL := fs.String("base-url", "", "how browsers and the app reach the simulator, e.g. https://ehr.localhost:9443 (required)")
	appURL := fs.String("app-url", "", "the app's public_url (required): its /launch is the Launch URL, its /callback the redirect URI")
	clientID := fs.String("client-id", "smartlabs", "the app's client_id; its secret is read from "+simSecretEnv)
	tlsDir := fs.String("tls-dir", "", "serve HTTPS with DIR/cert.pem and DIR/key.pem; when missing they are written, signed by a new CA whose certificate is DIR/ca.pem")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	base, err := url.Parse(*baseURL)
	if *baseURL == "" || err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		problems = append(problems, "--base-url: required, an absolute http(s) URL")
	}
	if app, err := url.Parse(*appURL); *appURL == "" || err != nil || app.Host == "" {
		problems = append(problems, "--app-url: required, the app's public_url")
	}
	secret := getenv(simSecretEnv)
	if secret == "" {
		problems = append(problems, simSecretEnv+": required, the app's client_secret at the simulator")
	}
	if len(problems) > 0 {
		return fmt.Errorf("simulator: %s", strings.Join(problems, "; "))
	}
	app := strings.TrimSuffix(*appURL, "/")
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL:      *baseURL,
		AppLaunchURL: app + "/launch",
		Clients:      []ehrsim.Client{{ID: *clientID, Secret: secret, RedirectURIs: []string{app + "/callback"}}},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer ln.Close()
	where := "plain HTTP"
	if *tlsDir != "" {
		files, err := ensureSimulatorTLS(*tlsDir, base.Hostname(), time.Now())
		if err != nil {
			return fmt.Errorf("simulator: --tls-dir: %w", err)
		}
		cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return fmt.Errorf("simulator: --tls-dir: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		where = "HTTPS; clients trust " + files.CA
	}
	fmt.Fprintf(stdout, "EHR simulator listening on %s (%s)\n  launchpad %s/\n  FHIR base (iss) %s\n", ln.Addr(), where, strings.TrimSuffix(*baseURL, "/"), sim.ISS())
	return serveUntilDone(ctx, ln, sim)
}

// tlsFiles are the PEM files of a TLS server certificate and the CA that signed it.
type tlsFiles struct {
	CA, Cert, Key string
}

// ensureSimulatorTLS returns dir's cert.pem and key.pem, first writing them
// for host, signed by a new CA (ca.pem), when either is missing. The CA's own
// key is never written: nothing else can be signed with it.
func ensureSimulatorTLS(dir, host string, now time.Time) (tlsFiles, error) {
	f := tlsFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	_, errCert := os.Stat(f.Cert)
	_, errKey := os.Stat(f.Key)
	if errCert == nil && errKey == nil {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, err
	}
	caPEM, certPEM, keyPEM, err := newCAAndLeaf([]string{host}, now)
	if err != nil {
		return f, err
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{f.Key, keyPEM, 0o600}, {f.Cert, certPEM, 0o644}, {f.CA, caPEM, 0o644}} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return f, err
		}
	}
	return f, nil
}

// newCAAndLeaf makes a CA certificate and a server certificate for hosts
// (DNS names or IPs) signed by it, valid for a year from now, all as PEM.
// Serial numbers are left to x509.CreateCertificate, which draws them at random.
func newCAAndLeaf(hosts []string, now time.Time) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	ca := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "smartlabs EHR simulator CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
