package server

import (
	"strings"
	"testing"
)

// TestReadBuildInfoLinkTime: version and revision set with -ldflags -X (what
// `make image` does) are what /healthz and `smartlabs version` print, so an
// image's labels and its binary agree.
func TestReadBuildInfoLinkTime(t *testing.T) {
	saved := [3]string{linkVersion, linkRevision, linkModified}
	t.Cleanup(func() { linkVersion, linkRevision, linkModified = saved[0], saved[1], saved[2] })

	linkVersion, linkRevision, linkModified = "", "", ""
	if b := ReadBuildInfo(""); b.Version != "dev" {
		t.Errorf("no version = %q, want dev", b.Version)
	}
	if b := ReadBuildInfo("v0.9.0"); b.Version != "v0.9.0" {
		t.Errorf("given version = %q, want v0.9.0", b.Version)
	}

	linkVersion, linkRevision, linkModified = "v1.2.0", "0a1b2c3d4e5f", "true"
	b := ReadBuildInfo("dev")
	if b.Version != "v1.2.0" || b.Revision != "0a1b2c3d4e5f" || !b.Modified {
		t.Errorf("link-time build = %+v", b)
	}
	if s := b.String(); !strings.HasPrefix(s, "smartlabs v1.2.0 go") || !strings.HasSuffix(s, " revision 0a1b2c3d4e5f (modified)") {
		t.Errorf("String() = %q", s)
	}
	linkModified = ""
	if b := ReadBuildInfo("dev"); b.Modified {
		t.Error("clean link-time build reported as modified")
	}
}
