// Command repocheck fails when git tracks a build output or a large file:
// compiled binaries (ELF, Mach-O, PE), Go test binaries (*.test), or any file
// over 1 MB outside a testdata/ directory. `make test` runs it, so such a
// file can never land again.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
)

// maxTracked is the largest file git may track outside testdata/.
const maxTracked = 1 << 20

func main() {
	if err := run(".", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "repocheck:", err)
		os.Exit(1)
	}
}

// run checks every file git tracks in the work tree at dir.
func run(dir string, stdout io.Writer) error {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	var bad []string
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		f, err := os.Open(path.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		head := make([]byte, 4)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if why := violation(name, st.Size(), head[:n]); why != "" {
			bad = append(bad, name+": "+why)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("git tracks build outputs or large files (remove them and ignore them):\n  %s", strings.Join(bad, "\n  "))
	}
	fmt.Fprintln(stdout, "repocheck: no build outputs or large files tracked")
	return nil
}

// Magic numbers of compiled executables.
var binaryMagics = [][]byte{
	{0x7f, 'E', 'L', 'F'},    // ELF (Linux, BSD)
	{0xcf, 0xfa, 0xed, 0xfe}, // Mach-O 64-bit
	{0xce, 0xfa, 0xed, 0xfe}, // Mach-O 32-bit
	{0xca, 0xfe, 0xba, 0xbe}, // Mach-O universal
	{'M', 'Z'},               // PE (Windows)
}

// violation says why a tracked file must not be tracked, or "" when it may be.
// head holds the file's first bytes.
func violation(name string, size int64, head []byte) string {
	if strings.HasSuffix(name, ".test") {
		return "a compiled Go test binary"
	}
	for _, m := range binaryMagics {
		if bytes.HasPrefix(head, m) {
			return "a compiled executable"
		}
	}
	if size > maxTracked && !inTestdata(name) {
		return fmt.Sprintf("%d bytes, over the %d-byte limit outside testdata/", size, maxTracked)
	}
	return ""
}

// inTestdata reports whether name lies under a directory named testdata.
func inTestdata(name string) bool {
	return name == "testdata" || strings.HasPrefix(name, "testdata/") || strings.Contains(name, "/testdata/")
}
