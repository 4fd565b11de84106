package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"smartlabs/server/config"
	"smartlabs/server/keys"
)

// TestKeyFileModeAtStart: serve refuses a private key file other users can
// read or write, naming the key and the mode, and starts with a warning in the
// log for a group-readable one. `keys new` writes 0600.
func TestKeyFileModeAtStart(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes carry no meaning on Windows")
	}
	dir := filepath.Join(t.TempDir(), "org-a")
	if err := run(context.Background(), []string{"keys", "new", "--out", dir}, os.Getenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, keys.PrivateKeyFile)
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("keys new wrote mode %04o, want 0600", st.Mode().Perm())
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", PublicURL: "http://localhost:8080",
		Issuers: []config.Issuer{{Name: "Org A", ISS: "https://ehr.example.org/fhir", ClientID: "a", PrivateKeyFile: keyFile}},
	}
	if err := config.Finish(cfg); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode     os.FileMode
		wantErr  []string // in the start error; none means it starts
		wantWarn bool
	}{
		{0o600, nil, false},
		{0o400, nil, false},
		{0o640, nil, true},
		{0o440, nil, true},
		{0o644, []string{"issuers[0].private_key_file", "mode 0644", "readable by every user"}, false},
		{0o604, []string{"issuers[0].private_key_file", "mode 0604"}, false},
		{0o620, []string{"issuers[0].private_key_file", "mode 0620", "writable by its group"}, false},
		{0o602, []string{"issuers[0].private_key_file", "mode 0602", "writable by every user"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			if err := os.Chmod(keyFile, tt.mode); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			a, err := newApp(cfg, func(string) string { return "" }, &logs)
			if len(tt.wantErr) > 0 {
				if err == nil {
					a.Close()
					t.Fatalf("mode %04o: the app started", tt.mode)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("mode %04o: %v", tt.mode, err)
			}
			a.Close()
			warned := strings.Contains(logs.String(), `"level":"warn"`) && strings.Contains(logs.String(), "readable by its group")
			if warned != tt.wantWarn {
				t.Errorf("warning logged = %v, want %v; log:\n%s", warned, tt.wantWarn, logs.String())
			}
		})
	}
}
