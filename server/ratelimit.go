package server

import (
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Rate limits of the sign-in routes (/launch and /callback). The per-browser
// limit is the real one; the per-IP ceiling is high because a hospital's
// clinicians share one NAT address, and it only stops a flood from one host.
const (
	launchPerBrowser = 30
	launchPerIP      = 600
	limitWindow      = time.Minute
	// limiterMaxKeys bounds each limiter's memory (about 100 bytes per key).
	limiterMaxKeys = 100_000
)

// limiter counts requests per key in fixed windows that start at a key's
// first request. It is per replica: a flood spread over replicas gets
// replicas × limit, which is still bounded.
type limiter struct {
	limit  int
	window time.Duration
	max    int
	now    func() time.Time

	mu        sync.Mutex
	counts    map[string]*windowCount
	lastSweep time.Time
}

type windowCount struct {
	start time.Time
	n     int
}

func newLimiter(limit int, window time.Duration, maxKeys int, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{limit: limit, window: window, max: maxKeys, now: now, counts: map[string]*windowCount{}}
}

// allow counts one request for key and reports whether it is within the
// limit; when not, retryAfter says when the key's window ends.
func (l *limiter) allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastSweep) >= l.window {
		l.sweep(now)
	}
	w := l.counts[key]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.counts) >= l.max {
			l.evict(now)
		}
		w = &windowCount{start: now}
		l.counts[key] = w
	}
	if w.n >= l.limit {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}

// sweep drops every key whose window has ended; l.mu must be held.
func (l *limiter) sweep(now time.Time) {
	for k, w := range l.counts {
		if now.Sub(w.start) >= l.window {
			delete(l.counts, k)
		}
	}
	l.lastSweep = now
}

// evict makes room for a new key when the map is full: first the ended
// windows, then arbitrary live keys down to three quarters, so a flood of
// fresh keys (fresh browsers, many IPv6 addresses) cannot grow memory without
// bound; an evicted key merely starts a new window. l.mu must be held.
func (l *limiter) evict(now time.Time) {
	l.sweep(now)
	for k := range l.counts {
		if len(l.counts) < l.max*3/4 {
			break
		}
		delete(l.counts, k)
	}
}

// len returns how many keys the limiter holds.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counts)
}

// signInRateLimit limits a route per browser session and, with a high
// ceiling, per client IP; each call makes limiters of its own, one per route.
func (s *Server) signInRateLimit() echo.MiddlewareFunc {
	perBrowser := newLimiter(launchPerBrowser, limitWindow, limiterMaxKeys, nil)
	perIP := newLimiter(launchPerIP, limitWindow, limiterMaxKeys, nil)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ok, wait := perIP.allow(ipKey(c.RealIP())); !ok {
				return tooManyRequests(wait, "per-IP ceiling")
			}
			if b := s.sessions.BrowserID(c.Request().Context()); b != "" {
				if ok, wait := perBrowser.allow(b); !ok {
					return tooManyRequests(wait, "per-browser limit")
				}
			}
			return next(c)
		}
	}
}

// ipKey is the rate-limit key of an IP: IPv6 clients are counted per /64,
// because one host commonly holds a whole /64.
func ipKey(s string) string {
	ip := net.ParseIP(s)
	if ip == nil {
		return "ip:" + s
	}
	if ip.To4() == nil {
		return "ip6:" + ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return "ip:" + ip.String()
}

func tooManyRequests(wait time.Duration, which string) *AppError {
	return &AppError{Status: http.StatusTooManyRequests, Reason: "rate_limited", Title: "Too many sign-ins at once",
		Public:     "smartlabs was opened too many times in a short while. Wait a minute, then reopen smartlabs from the patient's chart.",
		RetryAfter: max(1, int(math.Ceil(wait.Seconds()))),
		Err:        errors.New("rate limited: " + which)}
}

// ipExtractor returns the client IP rule: the socket peer, unless the peer is
// a configured trusted proxy; then the right-most X-Forwarded-For entry that
// is not a trusted proxy. Client-sent X-Forwarded-* headers change nothing
// otherwise, since anyone can send them.
func (s *Server) ipExtractor() echo.IPExtractor {
	nets := s.cfg.TrustedProxyNets()
	if len(nets) == 0 {
		return echo.ExtractIPDirect()
	}
	// echo trusts loopback, link-local and private networks by default; only
	// the configured networks are trusted here.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range nets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
