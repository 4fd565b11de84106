package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"smartlabs/static"
)

// routes is the one map of every route and middleware group.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Client-sent X-Forwarded-For is trusted only from configured trusted_proxies.
	e.IPExtractor = s.ipExtractor()

	e.Pre(s.withRequestID)
	e.Use(s.logRequests, s.observe, s.recoverPanics, s.securityHeaders, s.crossOriginGuard())
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		Level:   5,
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == "/healthz" || hasPrefix(c, "/static/") },
	}))

	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/.well-known/jwks.json", s.handleJWKS)
	e.GET("/static/*", echo.WrapHandler(static.Handler()))

	// Routes that use the browser session.
	g := e.Group("", s.guardHTMX, echo.WrapMiddleware(s.sessions.Middleware))
	// Plain GET navigations of /launch, /callback and /l/:launch stay open
	// cross-site: the EHR and the authorization server navigate to them.
	g.GET("/launch", s.handleLaunch, s.signInRateLimit())
	g.HEAD("/launch", s.handleLaunchHead)
	// The default redirect path and every issuer's own redirect_path (one per
	// organisation) share one handler and one rate limit.
	callbackLimit := s.signInRateLimit()
	for _, p := range s.cfg.RedirectPaths() {
		g.GET(p, s.handleCallback, callbackLimit)
	}
	g.GET("/l/:launch", s.handleLabsPage)
	g.GET("/l/:launch/a/:key", s.handleAnalytePage)
	g.GET("/l/:launch/theme.css", s.handleTheme)
	// The updates of a view while its results arrive (htmx long polls).
	g.GET("/l/:launch/live", s.handleLive, s.requireHTMX)
	// HTMX and state-changing routes need the anti-forgery header and a same-origin Sec-Fetch-Site.
	g.GET("/l/:launch/labs", s.handleLabsFragment, s.requireHTMX)
	g.POST("/l/:launch/logout", s.handleLogout, s.requireAntiForgery)
	e.GET(signedOutPath, s.handleSignedOut)

	e.RouteNotFound("/*", func(c echo.Context) error { return echo.NewHTTPError(http.StatusNotFound) })
	return e
}

func hasPrefix(c echo.Context, p string) bool {
	return strings.HasPrefix(c.Request().URL.Path, p)
}
