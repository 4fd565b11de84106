package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"smartlabs/server/session"
	"smartlabs/server/theme"
)

// Bounds of the EHR theme cache and fetch.
const (
	themeTTL        = time.Hour
	themeFailTTL    = 5 * time.Minute
	themeMaxEntries = 64
	themeMaxBytes   = 64 << 10
	themeTimeout    = 5 * time.Second
)

// themeCache keeps each style document's stylesheet for a while: every launch
// of an organisation shares one smart_style_url.
type themeCache struct {
	mu      sync.Mutex
	entries map[string]themeEntry
}

type themeEntry struct {
	css     []byte
	expires time.Time
}

// themeURL is the launch's smart_style_url when the app may fetch it, else "".
func (s *Server) themeURL(l *session.Launch) string {
	if l.SmartStyleURL == "" {
		return ""
	}
	is := s.cfg.Lookup(l.ISS)
	if is == nil || !theme.Allowed(l.SmartStyleURL, is.ISS) {
		return ""
	}
	return l.SmartStyleURL
}

// handleTheme handles "GET /l/:launch/theme.css": the EHR's style as our CSS
// variables, or an empty stylesheet (our default theme) when there is none.
func (s *Server) handleTheme(c echo.Context) error {
	l, err := s.loadLaunch(c)
	if err != nil {
		return err
	}
	var css []byte
	if u := s.themeURL(l); u != "" {
		css = s.themeCSS(c.Request().Context(), u)
	}
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", css)
}

// themeCSS returns the stylesheet of style document u, from the cache or fetched.
func (s *Server) themeCSS(ctx context.Context, u string) []byte {
	now := s.now()
	s.themes.mu.Lock()
	if e, ok := s.themes.entries[u]; ok && now.Before(e.expires) {
		s.themes.mu.Unlock()
		return e.css
	}
	s.themes.mu.Unlock()

	css, err := s.fetchTheme(ctx, u)
	ttl := themeTTL
	if err != nil {
		// A broken style document means our default theme, for a while, not an error page.
		s.log.Info().AnErr("error", err).Msg("EHR style document not used")
		ttl = themeFailTTL
	}
	s.themes.mu.Lock()
	defer s.themes.mu.Unlock()
	if s.themes.entries == nil {
		s.themes.entries = map[string]themeEntry{}
	}
	if len(s.themes.entries) >= themeMaxEntries {
		for k, e := range s.themes.entries {
			if !now.Before(e.expires) {
				delete(s.themes.entries, k)
			}
		}
	}
	for k := range s.themes.entries {
		if len(s.themes.entries) < themeMaxEntries {
			break
		}
		delete(s.themes.entries, k)
	}
	s.themes.entries[u] = themeEntry{css: css, expires: now.Add(ttl)}
	return css
}

// errThemeRedirect refuses redirects: one could lead to a host that is not the issuer's.
var errThemeRedirect = errors.New("redirect refused")

// fetchTheme GETs the style document u (already checked by theme.Allowed)
// without any credentials: the access token goes to the FHIR API only.
func (s *Server) fetchTheme(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, themeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	hc := *s.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errThemeRedirect }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("style document answered " + resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, themeMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > themeMaxBytes {
		return nil, errors.New("style document too large")
	}
	return theme.CSS(body), nil
}
