// Package server is the smartlabs backend-for-frontend: the SMART launch,
// the labs views and everything around them, as one Echo application.
package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"smartlabs/components/layout"
	"smartlabs/server/config"
	"smartlabs/server/keys"
	"smartlabs/server/session"
	"smartlabs/server/smart"
	"smartlabs/static"
)

// Deps are the parts a Server is wired from; cmd/smartlabs builds them.
type Deps struct {
	Config   *config.Config
	Logger   zerolog.Logger
	Audit    *Audit
	Sessions *session.Manager
	SMART    *smart.Client
	// HTTPClient carries every FHIR request (one pooled transport).
	HTTPClient *http.Client
	// Keys holds the private_key_jwt key of each issuer that uses one, by configured iss.
	Keys    map[string]*keys.Key
	Version string
	Now     func() time.Time
}

// Server is the smartlabs HTTP application.
type Server struct {
	cfg      *config.Config
	log      zerolog.Logger
	audit    *Audit
	sessions *session.Manager
	smart    *smart.Client
	http     *http.Client
	keys     map[string]*keys.Key
	version  string
	now      func() time.Time
	loc      *time.Location
	csp      string
	hsts     bool
	echo     *echo.Echo
}

// New wires a Server. It does no I/O.
func New(d Deps) *Server {
	s := &Server{
		cfg: d.Config, log: d.Logger, audit: d.Audit, sessions: d.Sessions, smart: d.SMART,
		http: d.HTTPClient, keys: d.Keys, version: d.Version, now: d.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.http == nil {
		s.http = http.DefaultClient
	}
	if s.audit == nil {
		s.audit = NewAudit(zerolog.Nop())
	}
	s.loc = time.Local
	if d.Config.TimeZone != "" {
		if loc, err := time.LoadLocation(d.Config.TimeZone); err == nil {
			s.loc = loc
		}
	}
	s.csp = contentSecurityPolicy(d.Config.FrameAncestors)
	s.hsts = strings.HasPrefix(d.Config.PublicURL, "https://")
	s.echo = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// contentSecurityPolicy allows only our own scripts and styles, and framing
// only by the configured EHR origins.
func contentSecurityPolicy(frameAncestors []string) string {
	fa := "'none'"
	if len(frameAncestors) > 0 {
		fa = strings.Join(frameAncestors, " ")
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"object-src 'none'; base-uri 'none'; frame-ancestors " + fa
}

func (s *Server) layoutProps(title string) layout.Props {
	return layout.Props{Title: title, CSSPath: static.Path("app.css"), JSPath: static.Path("app.js")}
}

// render writes a component into a buffer first, so a failed render never sends half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }

// handleHealthz handles "GET /healthz".
func (s *Server) handleHealthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok "+s.version+"\n")
}

// handleReadyz handles "GET /readyz": ready only when the session store answers.
func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.sessions.KV().Ping(ctx); err != nil {
		s.log.Warn().AnErr("error", err).Msg("readyz: session store unreachable")
		return c.String(http.StatusServiceUnavailable, "session store unreachable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// handleJWKS handles "GET /.well-known/jwks.json": the public keys used for private_key_jwt.
func (s *Server) handleJWKS(c echo.Context) error {
	ks := make([]*keys.Key, 0, len(s.keys))
	for _, is := range s.cfg.Issuers {
		if k := s.keys[is.ISS]; k != nil {
			ks = append(ks, k)
		}
	}
	// Let key-set caches (Epic keeps them for hours) pick up a rotation within an hour.
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/json", keys.JWKS(dedupeKeys(ks)...))
}

func dedupeKeys(ks []*keys.Key) []*keys.Key {
	seen := map[string]bool{}
	out := ks[:0]
	for _, k := range ks {
		if !seen[k.KeyID()] {
			seen[k.KeyID()] = true
			out = append(out, k)
		}
	}
	return out
}
