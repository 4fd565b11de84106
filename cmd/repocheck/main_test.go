package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestViolation(t *testing.T) {
	tests := []struct {
		name string
		size int64
		head []byte
		want string // a word the reason must contain; "" = allowed
	}{
		{"load.test", 10, []byte("#!/b"), "test binary"},
		{"server/bench/bench.test", 10, nil, "test binary"},
		{"bin/smartlabs", 100, []byte{0x7f, 'E', 'L', 'F'}, "executable"},
		{"tool.exe", 100, []byte("MZ\x90\x00"), "executable"},
		{"tool", 100, []byte{0xcf, 0xfa, 0xed, 0xfe}, "executable"},
		{"big.json", 1<<20 + 1, []byte("{"), "limit"},
		{"server/fhir/testdata/big.json", 5 << 20, []byte("{"), ""},
		{"testdata/big.json", 5 << 20, []byte("{"), ""},
		{"exactly.json", 1 << 20, []byte("{"), ""},
		{".ci/run", 100, []byte("#!/u"), ""},
		{"notestdata/big.json", 2 << 20, []byte("{"), "limit"},
		{"empty", 0, nil, ""},
	}
	for _, tt := range tests {
		got := violation(tt.name, tt.size, tt.head)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("violation(%q, %d) = %q, want %q", tt.name, tt.size, got, tt.want)
		}
	}
}

// TestRunOnARepository runs the check on a real git work tree: clean, then
// with a committed binary.
func TestRunOnARepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("main.go", []byte("package main\n"))
	write("server/testdata/large.bin", bytes.Repeat([]byte("x"), 2<<20))
	git("add", ".")
	git("commit", "-qm", "clean")
	var out bytes.Buffer
	if err := run(dir, &out); err != nil {
		t.Fatalf("clean repository: %v", err)
	}

	write("pkg.test", append([]byte{0x7f, 'E', 'L', 'F'}, make([]byte, 64)...))
	git("add", "pkg.test")
	err := run(dir, &out)
	if err == nil || !strings.Contains(err.Error(), "pkg.test") {
		t.Fatalf("repository with pkg.test: err = %v, want it named", err)
	}
}
