// Package server is the smartlabs backend-for-frontend: the SMART launch,
// the labs views and everything around them, as one Echo application.
package server

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"smartlabs/components/layout"
	"smartlabs/server/config"
	"smartlabs/server/fhir"
	"smartlabs/server/keys"
	"smartlabs/server/labscache"
	"smartlabs/server/metrics"
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
	Keys map[string]*keys.Key
	// PublishedKeys are public keys served in the JWKS beside those of Keys:
	// the next key before it is used, the retired key until it is no longer in flight.
	PublishedKeys []*keys.PublicKey
	// Metrics, when not nil, receives launch and session store counts.
	Metrics *metrics.Metrics
	// LabsCacheBytes bounds the estimated size of every launch's results held
	// in memory; 0 means labscache.DefaultMaxBytes.
	LabsCacheBytes int64
	Version        string
	Now            func() time.Time
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
	extra    []*keys.PublicKey
	metrics  *metrics.Metrics
	version  string
	now      func() time.Time
	loc      *time.Location
	csp      string
	hsts     bool
	echo     *echo.Echo
	// labsCache holds each launch's results in memory for filters and drill-downs;
	// Forget(launchID) purges one when its launch ends.
	labsCache *labscache.Cache
	// themes caches the stylesheets made from EHR style documents.
	themes themeCache
	// fhirCaps caches each issuer's CapabilityStatement (what a search may be sliced on).
	fhirCaps *fhir.CapabilityCache
	// gates bound the FHIR requests in flight to each issuer across all
	// launches (max_in_flight), by normalized iss.
	gates map[string]*fhir.Gate
}

// New wires a Server. It does no I/O.
func New(d Deps) *Server {
	s := &Server{
		cfg: d.Config, log: d.Logger, audit: d.Audit, sessions: d.Sessions, smart: d.SMART,
		http: d.HTTPClient, keys: d.Keys, version: d.Version, now: d.Now,
		extra: d.PublishedKeys, metrics: d.Metrics,
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
	s.labsCache = labscache.New(labscache.Options{MaxBytes: d.LabsCacheBytes, TTL: d.Config.Session.IdleTimeout,
		Now: s.now, OnPanic: s.fetchPanicked})
	s.fhirCaps = &fhir.CapabilityCache{TTL: d.Config.FHIR.DiscoveryTTL, Now: s.now}
	s.gates = map[string]*fhir.Gate{}
	for _, is := range d.Config.Issuers {
		s.gates[config.NormalizeISS(is.ISS)] = fhir.NewGate(orDefault(is.MaxInFlight, config.DefaultMaxInFlight))
	}
	s.csp = contentSecurityPolicy(d.Config.FrameAncestors, "")
	s.hsts = strings.HasPrefix(d.Config.PublicURL, "https://")
	s.echo = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// contentSecurityPolicy allows only our own scripts and styles, and framing
// only by the configured EHR origins. styleHash, when set, also allows the
// one inline stylesheet of that hash (layout.StyleHash: the EHR's theme).
func contentSecurityPolicy(frameAncestors []string, styleHash string) string {
	fa := "'none'"
	if len(frameAncestors) > 0 {
		fa = strings.Join(frameAncestors, " ")
	}
	style := "'self'"
	if styleHash != "" {
		style += " " + styleHash
	}
	return "default-src 'self'; script-src 'self'; style-src " + style + "; img-src 'self' data:; " +
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
	// One line for operators: what runs, built from which commit, with which Go.
	return c.String(http.StatusOK, "ok "+ReadBuildInfo(s.version).String()+"\n")
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
	ps := make([]*keys.PublicKey, 0, len(s.keys)+len(s.extra))
	for _, is := range s.cfg.Issuers {
		if k := s.keys[is.ISS]; k != nil {
			ps = append(ps, k.Public())
		}
	}
	ps = append(ps, s.extra...)
	// Epic caches a key set up to 29 h unless Cache-Control says less; one hour
	// bounds how long a rotation step must wait for every EHR to see the new set.
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age="+strconv.Itoa(int(JWKSMaxAge/time.Second)))
	return c.Blob(http.StatusOK, "application/json", keys.JWKSOf(ps...))
}

// JWKSMaxAge is the Cache-Control max-age of /.well-known/jwks.json: the
// least time to wait between publishing a key and signing with it.
const JWKSMaxAge = time.Hour
