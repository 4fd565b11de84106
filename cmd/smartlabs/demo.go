package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
	"smartlabs/server/session"
)

// demoClientID is the app's client id at the built-in simulator.
const demoClientID = "smartlabs-demo"

// runDemo runs the app and the EHR simulator side by side on loopback. The
// app is reached as localhost and the simulator as 127.0.0.1: two sites, so
// the app runs in a cross-site frame exactly as inside Epic.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the app (reached as http://localhost:PORT)")
	ehrListen := fs.String("ehr-listen", "127.0.0.1:9090", "address of the EHR simulator (reached as http://127.0.0.1:PORT)")
	clientAuth := fs.String("client-auth", "secret", "how the app authenticates to the simulator: secret or jwt")
	latency := fs.Duration("latency", 0, "simulator: latency added to each FHIR and token request")
	failPage := fs.Int("fail-page", 0, "simulator: this Observation page number answers 500")
	tokenLifetime := fs.Duration("token-lifetime", time.Hour, "simulator: access token lifetime")
	pageSize := fs.Int("page-size", 100, "results per FHIR page the app asks for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clientAuth != "secret" && *clientAuth != "jwt" {
		return fmt.Errorf("demo: --client-auth must be secret or jwt")
	}

	ehrLn, err := net.Listen("tcp", *ehrListen)
	if err != nil {
		return fmt.Errorf("demo: EHR simulator: %w (choose another with --ehr-listen)", err)
	}
	defer ehrLn.Close()
	appLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: app: %w (choose another with --listen)", err)
	}
	defer appLn.Close()
	ehrBase := "http://127.0.0.1:" + portOf(ehrLn)
	appBase := "http://localhost:" + portOf(appLn)

	cfg := &config.Config{
		Listen:         appLn.Addr().String(),
		PublicURL:      appBase,
		FrameAncestors: []string{ehrBase},
		AuditLog:       "-",
		Session:        config.Session{Store: "memory"},
		FHIR:           config.FHIR{PageSize: *pageSize},
	}
	client := ehrsim.Client{ID: demoClientID, RedirectURIs: []string{cfg.RedirectURI()}}
	issuer := config.Issuer{Name: "smartlabs EHR simulator", ClientID: demoClientID}
	if *clientAuth == "jwt" {
		dir, err := os.MkdirTemp("", "smartlabs-demo-keys-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		keyFile, err := writeNewKey(dir)
		if err != nil {
			return err
		}
		issuer.PrivateKeyFile = keyFile
		client.JWKSURL = appBase + "/.well-known/jwks.json"
	} else {
		// A secret with characters x/oauth2 must escape, as real secrets have.
		secret := session.RandomID() + "+/="
		issuer.ClientSecret = config.Secret(secret)
		client.Secret = secret
	}
	sim, err := ehrsim.New(ehrsim.Options{
		BaseURL:      ehrBase,
		AppLaunchURL: appBase + "/launch",
		Clients:      []ehrsim.Client{client},
		Switches:     ehrsim.Switches{Latency: *latency, FailPage: *failPage, TokenLifetime: *tokenLifetime},
	})
	if err != nil {
		return err
	}
	issuer.ISS = sim.ISS()
	cfg.Issuers = []config.Issuer{issuer}
	if err := config.Finish(cfg); err != nil {
		return err
	}
	a, err := newApp(cfg, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	fmt.Fprintf(stdout, "smartlabs demo is running.\n  Open the EHR simulator: %s/\n  (app at %s, FHIR base %s)\nPress Ctrl+C to stop.\n", ehrBase, appBase, sim.ISS())

	return serveTogether(ctx, listener{ehrLn, sim}, listener{appLn, a.handler})
}

func portOf(ln net.Listener) string {
	addr := ln.Addr().String()
	return addr[strings.LastIndex(addr, ":")+1:]
}
