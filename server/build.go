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

// Build values set at link time, e.g. by `make image`:
//
//	-ldflags "-X smartlabs/server.linkVersion=v1.2.0 -X smartlabs/server.linkRevision=0a1b2c3…"
//
// The go command stamps VCS information only in a plain git checkout (not in
// a git worktree, a source archive or with -buildvcs=false), and an image's
// labels must name the same version and revision as the binary inside it.
var (
	linkVersion  string
	linkRevision string
	// linkModified is "true" when the checkout had uncommitted changes.
	linkModified string
)

// ReadBuildInfo reads the binary's build information. Values set at link
// time win; otherwise version is used as given and the revision comes from
// the go command's VCS stamp.
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
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
	}
	if linkVersion != "" {
		b.Version = linkVersion
	}
	if linkRevision != "" {
		b.Revision = linkRevision
		b.Modified = linkModified == "true"
	}
	if b.Version == "" {
		b.Version = "dev"
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
