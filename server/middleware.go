package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

const ctxRequestID = "request_id"

// withRequestID gives every request a fresh id; an incoming X-Request-ID is
// ignored because a client could use it to forge log lines.
func (s *Server) withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// routeOf is the route pattern (e.g. /l/:launch), never the path or query:
// those carry launch ids, codes, states and launch tokens.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// logRequests writes one line per request: route pattern, status, latency, request id.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.Info().
			Str("request_id", requestID(c)).
			Str("method", c.Request().Method).
			Str("route", routeOf(c)).
			Int("status", c.Response().Status).
			Int64("bytes", c.Response().Size).
			Dur("latency", time.Since(start)).
			Msg("request")
		return nil
	}
}

// securityHeaders sets the headers every response needs. Everything except
// the content-hashed static assets is no-store: pages may hold patient data.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		s.setCSP(c)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if s.hsts {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !hasPrefix(c, "/static/") {
			h.Set(echo.HeaderCacheControl, "no-store")
		}
		return next(c)
	}
}

// The anti-forgery header every HTMX request and every state-changing request
// must carry. Its value need not be secret: a cross-site form, image or link
// cannot set a custom header, and without CORS grants (we send none) a
// cross-site fetch cannot either. SameSite is no defence here, because the
// session cookie must be SameSite=None to work inside the EHR's frame.
const (
	csrfHeader = "X-Smartlabs-CSRF"
	csrfValue  = "1"
)

// forgeryError is the page for a request that failed the anti-forgery checks.
func forgeryError(reason string) *AppError {
	return &AppError{Status: http.StatusForbidden, Reason: "antiforgery", Title: "Request refused",
		Public: "smartlabs refused this request because it did not come from smartlabs' own page. " + reopenText,
		Err:    errors.New("anti-forgery: " + reason)}
}

// crossOriginGuard refuses every cross-origin request with an unsafe method
// (anything but GET, HEAD and OPTIONS) on every route, using the browser's
// Sec-Fetch-Site header or else Origin against Host (Go's CrossOriginProtection).
func (s *Server) crossOriginGuard() echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil {
				return forgeryError(err.Error())
			}
			return next(c)
		}
	}
}

// requireAntiForgery guards HTMX routes and state-changing routes: the request
// must carry the anti-forgery header and, when the browser sends Fetch
// Metadata, come from our own origin. Sec-Fetch-Site "same-site" is refused
// too: a sibling subdomain is another application.
func (s *Server) requireAntiForgery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin":
		default:
			return forgeryError("Sec-Fetch-Site " + sanitizeHeader(site))
		}
		if r.Header.Get(csrfHeader) != csrfValue {
			return forgeryError("missing " + csrfHeader)
		}
		return next(c)
	}
}

// guardHTMX applies requireAntiForgery to every HTMX request (any request
// carrying HX-Request) on the routes it wraps, so a route that answers both
// plain navigations and HTMX swaps stays open to the first and guarded for the second.
func (s *Server) guardHTMX(next echo.HandlerFunc) echo.HandlerFunc {
	guarded := s.requireAntiForgery(next)
	return func(c echo.Context) error {
		if _, ok := c.Request().Header["Hx-Request"]; ok {
			return guarded(c)
		}
		return next(c)
	}
}

// requireHTMX lets only HTMX requests (HX-Request: true) reach a fragment route,
// with the anti-forgery checks of requireAntiForgery.
func (s *Server) requireHTMX(next echo.HandlerFunc) echo.HandlerFunc {
	guarded := s.requireAntiForgery(next)
	return func(c echo.Context) error {
		if !isHTMX(c) {
			return &AppError{Status: http.StatusBadRequest, Reason: "fragment_without_htmx", Title: "This address is part of a page",
				Public: "This address only serves smartlabs' own page, not a browser tab. " + reopenText,
				Err:    errors.New("fragment route without HX-Request")}
		}
		return guarded(c)
	}
}

// sanitizeHeader keeps a client-sent header value short and printable for logs.
func sanitizeHeader(v string) string {
	if len(v) > 32 {
		v = v[:32]
	}
	b := []byte(v)
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
