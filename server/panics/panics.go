// Package panics turns a panic into an error that can be logged, counted and
// shown as the plain error page, so that one bad response or lab value ends
// one request or one fetch, never the process.
package panics

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Error is a recovered panic.
type Error struct {
	// Value is what was passed to panic. It may hold anything, patient data
	// too, so it is never logged as it is: see Describe.
	Value any
	// Stack is the stack of the goroutine that panicked.
	Stack []byte
}

// Error describes the panic in words safe for the log. An *Error does not
// unwrap to its value: whatever was panicked, the user sees the plain 500
// page, never a page chosen by the value's type.
func (e *Error) Error() string { return "panic: " + Describe(e.Value) }

// Describe says what a panic value is without the data it may carry: the
// message of a runtime error (a nil dereference, an index out of range: the
// runtime writes only numbers and types there), otherwise only its type.
func Describe(v any) string {
	var re runtime.Error
	if err, ok := v.(error); ok && errors.As(err, &re) {
		return re.Error()
	}
	return fmt.Sprintf("value of type %T", v)
}

// From makes an *Error of a value returned by recover, with the current
// stack; an *Error panicked again (from another goroutine, see Recover) is
// kept as it is, with the stack where it first happened.
func From(r any) *Error {
	if pe, ok := r.(*Error); ok {
		return pe
	}
	return &Error{Value: r, Stack: debug.Stack()}
}

// Recover, deferred directly (defer panics.Recover(&err)), stops a panic of
// the goroutine and stores it in *err as an *Error. A goroutine that works
// for another one uses it, and the other panics again with *err once it has
// waited for it, so the panic surfaces where it can be handled.
func Recover(err *error) {
	if r := recover(); r != nil {
		*err = From(r)
	}
}
