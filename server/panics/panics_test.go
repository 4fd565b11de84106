package panics_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"smartlabs/server/panics"
)

func TestRecoverInAGoroutine(t *testing.T) {
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer panics.Recover(&err)
		var m map[string]int
		m["x"]++ // a nil map write: a runtime error
	}()
	wg.Wait()
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *panics.Error", err)
	}
	if !strings.Contains(err.Error(), "assignment to entry in nil map") {
		t.Errorf("Error() = %q, want the runtime error's message", err.Error())
	}
	if !strings.Contains(string(pe.Stack), "panics_test.TestRecoverInAGoroutine") {
		t.Errorf("stack does not show where the panic happened:\n%s", pe.Stack)
	}
	// Panicked again in the waiting goroutine, it keeps its first stack.
	if panics.From(pe) != pe {
		t.Error("From wrapped an *Error again")
	}
}

// TestDescribeKeepsDataOut: a panic value of the program's own may carry
// patient data or a token; only its type reaches the log.
func TestDescribeKeepsDataOut(t *testing.T) {
	for _, v := range []any{"patient 123 Jane Doe", errors.New("token abc"), struct{ Name string }{"Jane"}} {
		got := (&panics.Error{Value: v}).Error()
		for _, secret := range []string{"Jane", "123", "abc"} {
			if strings.Contains(got, secret) {
				t.Errorf("Error() for %T = %q: carries %q", v, got, secret)
			}
		}
	}
}
