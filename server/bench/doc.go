// Package bench holds smartlabs' performance benchmarks: the decode, view
// model and render micro-benchmarks (go test -bench), and in its
// subdirectories the end-to-end benchmark (e2e), the load generator (load),
// the reference fhirclient SPA (spa) and the plain Go SMART client used as the
// sequential limit (simclient). Nothing here is part of the shipped binary.
package bench
