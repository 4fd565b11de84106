package doctor

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
)

// TestKeyFileMode: the doctor shows the private key file's mode: PASS for
// 0600, WARN (not a failure) for group-readable, FAIL for what smartlabs refuses.
func TestKeyFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes carry no meaning on Windows")
	}
	sim, keyFiles := mustSim(t, ehrsim.Switches{})
	cfg := mustConfig(t, &config.Config{
		Issuers:         []config.Issuer{{Name: "jwt", ISS: sim.ISS(), ClientID: "app-jwt", PrivateKeyFile: keyFiles.PrivateKey}},
		BackendServices: []config.BackendService{{Name: "backend", ISS: sim.ISS(), ClientID: "backend", PrivateKeyFile: keyFiles.PrivateKey, Scopes: "system/Patient.read"}},
	})
	tests := []struct {
		mode       os.FileMode
		want       Status
		wantKey    Status
		wantFailed bool
		wantDetail string
	}{
		{0o600, Pass, Pass, false, "mode 0600"},
		{0o440, Warn, Pass, false, "mode 0440, readable by its group"},
		{0o640, Warn, Pass, false, "mode 0640, readable by its group"},
		{0o644, Fail, Skip, true, "mode 0644, readable by every user"},
		{0o620, Fail, Skip, true, "mode 0620, writable by its group"},
	}
	for _, tt := range tests {
		t.Run(tt.wantDetail, func(t *testing.T) {
			if err := os.Chmod(keyFiles.PrivateKey, tt.mode); err != nil {
				t.Fatal(err)
			}
			rows := CheckIssuers(context.Background(), cfg, Options{Timeout: 2 * time.Second})
			backendRows, err := CheckBackend(context.Background(), cfg, "backend", Options{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for _, subject := range []string{"jwt", "backend"} {
				got := verdicts(append(rows, backendRows...))
				if got[subject+"/private key mode"] != tt.want || got[subject+"/private key"] != tt.wantKey {
					t.Errorf("%s: mode row %q, key row %q; want %q and %q", subject, got[subject+"/private key mode"], got[subject+"/private key"], tt.want, tt.wantKey)
				}
			}
			for _, r := range rows {
				if r.Check == "private key mode" && !strings.Contains(r.Detail, tt.wantDetail) {
					t.Errorf("detail %q lacks %q", r.Detail, tt.wantDetail)
				}
			}
			if tt.want == Warn {
				var buf bytes.Buffer
				if err := WriteTable(&buf, rows); err != nil {
					t.Fatal(err)
				}
				if out := buf.String(); !strings.Contains(out, "WARN") || !strings.Contains(out, "all checks passed, 1 warning(s)") {
					t.Errorf("table does not show the warning:\n%s", out)
				}
			}
			if Failed(rows) != tt.wantFailed || Failed(backendRows) != tt.wantFailed {
				t.Errorf("Failed = %v / %v, want %v", Failed(rows), Failed(backendRows), tt.wantFailed)
			}
		})
	}
}
