package server

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiterWindows(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	l := newLimiter(3, time.Minute, 1000, func() time.Time { return now })
	steps := []struct {
		advance   time.Duration
		key       string
		wantOK    bool
		wantRetry time.Duration
	}{
		{0, "a", true, 0},
		{10 * time.Second, "a", true, 0},
		{10 * time.Second, "a", true, 0},
		{10 * time.Second, "a", false, 30 * time.Second}, // window started 30 s ago
		{0, "b", true, 0},                                // keys are counted apart
		{29 * time.Second, "a", false, time.Second},
		{time.Second, "a", true, 0}, // a new window
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		ok, retry := l.allow(st.key)
		if ok != st.wantOK || retry != st.wantRetry {
			t.Errorf("step %d (%s): allow = %v, retry %v; want %v, %v", i, st.key, ok, retry, st.wantOK, st.wantRetry)
		}
	}
}

// TestLimiterMemoryBounded: a flood of fresh keys never grows the limiter past
// its bound, and ended windows are swept.
func TestLimiterMemoryBounded(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	l := newLimiter(5, time.Minute, 100, func() time.Time { return now })
	for i := range 10_000 {
		l.allow("k" + strconv.Itoa(i))
		if n := l.len(); n > 100 {
			t.Fatalf("after %d keys the limiter holds %d, bound is 100", i+1, n)
		}
	}
	now = now.Add(2 * time.Minute)
	l.allow("fresh")
	if n := l.len(); n != 1 {
		t.Errorf("after every window ended the limiter holds %d keys, want 1", n)
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::2"}, // one /64: one key
		{"192.0.2.1", "::ffff:192.0.2.1"},                // IPv4 and its mapped form
	}
	for _, tt := range tests {
		if ipKey(tt.a) != ipKey(tt.b) {
			t.Errorf("ipKey(%s) = %s, ipKey(%s) = %s; want equal", tt.a, ipKey(tt.a), tt.b, ipKey(tt.b))
		}
	}
	if ipKey("2001:db8:1:2::1") == ipKey("2001:db8:1:3::1") {
		t.Error("different /64s share a key")
	}
	if ipKey("192.0.2.1") == ipKey("192.0.2.2") {
		t.Error("different IPv4 addresses share a key")
	}
}
