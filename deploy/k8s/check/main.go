// Command check validates smartlabs' Kubernetes manifests (deploy/k8s) offline:
//
//   - every document decodes strictly into its Kubernetes API type: an
//     unknown or misspelt field, or a value of the wrong type, is an error;
//   - the smartlabs config in the ConfigMap passes smartlabs' own config
//     validation, with every ${NAME} it uses set by the container;
//   - the deployment invariants hold (see checkDeployment and the others).
//
// It is a Go module of its own, so the app's go.mod never gains Kubernetes
// modules. `make k8s-check` runs its tests, which check the real manifests
// and that breaking any invariant is caught.
//
//	go run . ..   # from deploy/k8s/check: prints problems, exits 1 on any
package main

import (
	"fmt"
	"os"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	files, err := readManifests(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
	problems := Check(files)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "check: %d problem(s) in %s\n", len(problems), dir)
		os.Exit(1)
	}
	fmt.Printf("check: %d manifest files in %s are valid\n", len(files), dir)
}
