package server

import (
	"crypto/rand"
	"encoding/hex"
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
		h.Set("Content-Security-Policy", s.csp)
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
