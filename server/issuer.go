package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"smartlabs/server/config"
	"smartlabs/server/metrics"
	"smartlabs/server/session"
)

// ctxIssuer holds the configured issuer a request belongs to, once a handler knows it.
const ctxIssuer = "smartlabs.issuer"

// ctxStyleHash holds the CSP hash of the inline theme a page carries (labsLayout).
const ctxStyleHash = "smartlabs.style_hash"

// setRequestIssuer records that the request belongs to the configured issuer
// iss (a launch record's ISS). The CSP frame-ancestors of its response and its
// metrics labels then follow that issuer. An unknown iss changes nothing.
func (s *Server) setRequestIssuer(c echo.Context, iss string) {
	if is := s.cfg.Lookup(iss); is != nil {
		c.Set(ctxIssuer, is)
	}
}

// requestIssuer is the configured issuer of the request: the one a handler
// recorded, else for /launch the one its iss parameter names, else nil.
func (s *Server) requestIssuer(c echo.Context) *config.Issuer {
	if is, ok := c.Get(ctxIssuer).(*config.Issuer); ok {
		return is
	}
	if c.Request().URL.Path == "/launch" {
		return s.cfg.Lookup(c.QueryParam("iss"))
	}
	return nil
}

// contentSecurityPolicyFor is the CSP of a response: framing is allowed only
// by the request's own issuer's EHR origins (its frame_ancestors, else the
// top-level list), so one organisation's pages cannot frame another's launch.
// A page with the EHR's theme inline allows that one stylesheet by its hash.
func (s *Server) contentSecurityPolicyFor(c echo.Context) string {
	is := s.requestIssuer(c)
	hash, _ := c.Get(ctxStyleHash).(string)
	if (is == nil || len(is.FrameAncestors) == 0) && hash == "" {
		return s.csp
	}
	fa := s.cfg.FrameAncestors
	if is != nil && len(is.FrameAncestors) > 0 {
		fa = is.FrameAncestors
	}
	return contentSecurityPolicy(fa, hash)
}

// setCSP sets the default CSP now and, just before the response is written,
// the CSP of the issuer a handler has recorded by then.
func (s *Server) setCSP(c echo.Context) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", s.csp)
	c.Response().Before(func() {
		h.Set("Content-Security-Policy", s.contentSecurityPolicyFor(c))
	})
}

// checkCallbackPath refuses an authorization response that arrives on another
// issuer's redirect path: each authorization server has its own redirect URI,
// so an answer on the wrong one signals a mix-up (RFC 9700 §4.4).
func checkCallbackPath(c echo.Context, is *config.Issuer) error {
	if c.Request().URL.Path == config.RedirectPathOf(is) {
		return nil
	}
	return badRequest("callback.wrong_path", "This sign-in answer arrived at the wrong address",
		"The EHR's sign-in service answered at an address registered for another organisation, so it was refused. "+reopenText,
		errors.New("callback path does not match the issuer's redirect_path"))
}

// observe counts launches by stage and outcome, and session store failures,
// in the metrics. Labels carry the configured issuer name only.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if s.metrics == nil {
			return err
		}
		if err != nil && errors.Is(err, session.ErrStore) {
			s.metrics.SessionStoreError()
		}
		stage := ""
		switch p := c.Path(); {
		case p == "/launch" && c.Request().Method == http.MethodGet:
			stage = metrics.StageLaunch
		case p == config.DefaultRedirectPath || strings.HasPrefix(p, config.DefaultRedirectPath+"/"):
			stage = metrics.StageCallback
		default:
			return err
		}
		status := c.Response().Status
		if err != nil {
			status = asAppError(err).Status
		}
		// The cookie check sends the browser back to /launch once: not an outcome yet.
		if err == nil && status == http.StatusSeeOther && strings.HasPrefix(c.Response().Header().Get(echo.HeaderLocation), "/launch?") {
			return err
		}
		name := ""
		if is := s.requestIssuer(c); is != nil {
			name = is.Name
		}
		s.metrics.Launch(name, stage, metrics.OutcomeOf(status))
		return err
	}
}
