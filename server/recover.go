package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"smartlabs/server/metrics"
	"smartlabs/server/panics"
)

// recoverPanics turns a panic in a handler into the plain 500 page with a
// ref, logs it with the request's id and route, and counts it.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r) // net/http's own way to abort a response: not a bug
			}
			pe := panics.From(r)
			s.logPanic(metrics.PanicRequest, requestID(c), routeOf(c), pe)
			err = pe
		}()
		return next(c)
	}
}

// logPanic logs a recovered panic at error level with the request that
// caused it (the one that started the fetch, for a background fetch) and
// counts it. The panic value is described, never dumped: it may hold patient data.
func (s *Server) logPanic(where, requestID, route string, pe *panics.Error) {
	s.log.Error().Str("request_id", requestID).Str("route", route).Str("where", where).
		Str("panic", panics.Describe(pe.Value)).Str("stack", string(pe.Stack)).Msg("panic recovered")
	s.metrics.Panic(where)
}

// requestInfo names the request that started background work, for its log lines.
type requestInfo struct{ id, route string }

type requestInfoKey struct{}

// backgroundContext is a context for work a request starts that must outlive
// it (a fetch others wait for): never cancelled with the request, and
// carrying the request's id and route for the log.
func backgroundContext(c echo.Context) context.Context {
	ctx := context.WithoutCancel(c.Request().Context())
	return context.WithValue(ctx, requestInfoKey{}, requestInfo{id: requestID(c), route: routeOf(c)})
}

// requestInfoOf is the request that started ctx's work (see backgroundContext).
func requestInfoOf(ctx context.Context) requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return ri
}

// fetchPanicked logs and counts the panic of a labs fetch; the cache has
// already ended the fetch's entry with it as the error.
func (s *Server) fetchPanicked(ctx context.Context, pe *panics.Error) {
	ri := requestInfoOf(ctx)
	s.logPanic(metrics.PanicFetch, ri.id, ri.route, pe)
}
