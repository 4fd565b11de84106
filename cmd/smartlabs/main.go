// Command smartlabs runs the smartlabs SMART on FHIR app, its EHR simulator
// demo, and its key tooling.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"smartlabs/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "smartlabs:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  smartlabs serve --config FILE         run the app
  smartlabs demo [flags]                run the app with a built-in EHR simulator
  smartlabs simulator [flags]           run the EHR simulator alone (--base-url, --app-url, --tls-dir)
  smartlabs keys new --out DIR          write a new private_key_jwt key pair (--alg ES384 for ECDSA)
  smartlabs doctor --config FILE        check every issuer's setup; --backend NAME checks a backend-services registration
  smartlabs healthcheck --config FILE   exit 0 when the server of that config answers /healthz with 200
  smartlabs version                     print the version, Go version and VCS revision`

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("missing command")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], getenv, stdout, stderr)
	case "simulator":
		return runSimulator(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, server.ReadBuildInfo(version()))
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
