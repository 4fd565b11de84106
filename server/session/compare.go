package session

import "crypto/subtle"

// ConstantTimeEqual compares two secrets without leaking their common prefix
// through timing; empty never equals anything, so an absent value cannot match an absent value.
func ConstantTimeEqual(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
