package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"smartlabs/static"
)

// routes is the one map of every route and middleware group.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Client-sent X-Forwarded-For is never trusted: the IP is the socket's peer.
	e.IPExtractor = echo.ExtractIPDirect()

	e.Pre(s.withRequestID)
	e.Use(s.logRequests, middleware.Recover(), s.securityHeaders)
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		Level:   5,
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == "/healthz" || hasPrefix(c, "/static/") },
	}))

	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/.well-known/jwks.json", s.handleJWKS)
	e.GET("/static/*", echo.WrapHandler(static.Handler()))

	// Routes that use the browser session.
	g := e.Group("", echo.WrapMiddleware(s.sessions.Middleware))
	g.GET("/launch", s.handleLaunch)
	g.HEAD("/launch", s.handleLaunchHead)
	g.GET("/callback", s.handleCallback)
	g.GET("/l/:launch", s.handleLabsPage)
	g.GET("/l/:launch/labs", s.handleLabsFragment)

	e.RouteNotFound("/*", func(c echo.Context) error { return echo.NewHTTPError(http.StatusNotFound) })
	return e
}

func hasPrefix(c echo.Context, p string) bool {
	return len(c.Request().URL.Path) >= len(p) && c.Request().URL.Path[:len(p)] == p
}
