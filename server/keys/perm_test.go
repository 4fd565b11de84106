package keys

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestLoadFileModes: a key file other users can read, or anyone but its owner
// can write, is refused; a group-readable one loads with a warning.
func TestLoadFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes carry no meaning on Windows")
	}
	f := mustWriteNew(t, t.TempDir())
	tests := []struct {
		mode        os.FileMode
		wantRefused string // in the error when refused
		wantWarning bool
	}{
		{0o600, "", false},
		{0o400, "", false},
		{0o700, "", false},
		{0o640, "", true},
		{0o440, "", true},
		{0o604, "readable by every user", false},
		{0o644, "readable by every user", false},
		{0o444, "readable by every user", false},
		{0o620, "writable by its group", false},
		{0o660, "writable by its group", false},
		{0o602, "writable by every user", false},
		{0o606, "readable by every user and writable by every user", false},
		{0o666, "readable by every user and writable by every user and writable by its group", false},
	}
	for _, tt := range tests {
		t.Run(JudgePerm(tt.mode).String(), func(t *testing.T) {
			if err := os.Chmod(f.PrivateKey, tt.mode); err != nil {
				t.Fatal(err)
			}
			k, err := Load(f.PrivateKey)
			perm, serr := StatPerm(f.PrivateKey)
			if serr != nil {
				t.Fatal(serr)
			}
			if perm.Mode != tt.mode {
				t.Errorf("StatPerm mode = %s, want %04o", perm, tt.mode)
			}
			if tt.wantRefused != "" {
				if err == nil {
					t.Fatalf("mode %04o: Load succeeded, want refusal", tt.mode)
				}
				for _, w := range []string{tt.wantRefused, JudgePerm(tt.mode).String(), "chmod 600"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if perm.Problem != tt.wantRefused {
					t.Errorf("StatPerm problem = %q, want %q", perm.Problem, tt.wantRefused)
				}
				return
			}
			if err != nil {
				t.Fatalf("mode %04o: Load: %v", tt.mode, err)
			}
			if got := k.FilePerm(); got != perm || (got.Warning != "") != tt.wantWarning || got.Problem != "" {
				t.Errorf("FilePerm = %+v, want warning %v", got, tt.wantWarning)
			}
		})
	}
	// `smartlabs keys new` writes what Load accepts without a word.
	g := mustWriteNew(t, t.TempDir())
	k, err := Load(g.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if p := k.FilePerm(); p.Mode != 0o600 || p.Warning != "" {
		t.Errorf("a new key file loads as %+v, want 0600 without warning", p)
	}
}
