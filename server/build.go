package server

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo describes the running binary, for operators.
type BuildInfo struct {
	// Version is the module version, or what the caller passed ("dev" for a local build).
	Version string
	// GoVersion is the Go toolchain the binary was built with.
	GoVersion string
	// Revision is the VCS commit, "unknown" when built without VCS stamping
	// (-buildvcs=false, or outside a checkout).
	Revision string
	// Modified reports uncommitted changes in the checkout it was built from.
	Modified bool
}

// ReadBuildInfo reads the binary's build information; version is used as given.
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version(), Revision: "unknown"}
	if b.Version == "" {
		b.Version = "dev"
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				b.Revision = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one-line form shown by /healthz and `smartlabs version`,
// e.g. "smartlabs v1.2.0 go1.26.0 revision 0a1b2c3 (modified)".
func (b BuildInfo) String() string {
	s := "smartlabs " + b.Version + " " + b.GoVersion + " revision " + b.Revision
	if b.Modified {
		s += " (modified)"
	}
	return s
}
