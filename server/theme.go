package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"smartlabs/server/metrics"
	"smartlabs/server/panics"
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
	// flight makes one fetch per style document at a time.
	flight singleflight.Group
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
		css = s.themeCSS(c.Request().Context(), backgroundContext(c), u)
	}
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", css)
}

// themeCSS returns the stylesheet of style document u, from the cache or
// fetched. The fetch runs under bg, not under the request's ctx: a request
// that goes away neither ends the fetch that others wait for nor leaves "no
// theme" cached. Concurrent requests for u share one fetch. A request that
// ends first gets our default theme (nil).
func (s *Server) themeCSS(ctx, bg context.Context, u string) []byte {
	if css, ok := s.themes.get(u, s.now()); ok {
		return css
	}
	ch := s.themes.flight.DoChan(u, func() (any, error) { return s.loadTheme(bg, u), nil })
	select {
	case r := <-ch:
		css, _ := r.Val.([]byte)
		return css
	case <-ctx.Done():
		return nil
	}
}

// loadTheme fetches style document u, with its own timeout, and caches the
// outcome: the stylesheet for themeTTL; "no theme" for themeFailTTL, but
// only when the EHR answered (a bad status, a redirect, a body too large):
// a network error or a timeout says nothing about the document, so the next
// request tries again. It runs in singleflight's goroutine, so it recovers
// its own panics (one there would end the process) and treats them as a
// failure of the document.
func (s *Server) loadTheme(ctx context.Context, u string) (css []byte) {
	defer func() {
		if r := recover(); r != nil {
			ri := requestInfoOf(ctx)
			s.logPanic(metrics.PanicTheme, ri.id, ri.route, panics.From(r))
			// Our default theme for a while: the same document would panic again.
			s.themes.put(u, nil, s.now(), themeFailTTL)
			css = nil
		}
	}()
	if css, ok := s.themes.get(u, s.now()); ok {
		return css // fetched by a flight that ended since the caller looked
	}
	css, answered, err := s.fetchTheme(ctx, u)
	switch {
	case err == nil:
		s.themes.put(u, css, s.now(), themeTTL)
	case answered:
		// A broken style document means our default theme, for a while, not an error page.
		s.log.Info().AnErr("error", err).Msg("EHR style document not used")
		s.themes.put(u, nil, s.now(), themeFailTTL)
	default:
		s.log.Info().AnErr("error", err).Msg("EHR style document not reached; not cached")
	}
	return css
}

// get returns the cached stylesheet of u, if it has not expired at now.
func (tc *themeCache) get(u string, now time.Time) ([]byte, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e, ok := tc.entries[u]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.css, true
}

// put caches the stylesheet of u for ttl from now, keeping at most
// themeMaxEntries documents: expired ones go first, then any.
func (tc *themeCache) put(u string, css []byte, now time.Time, ttl time.Duration) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.entries == nil {
		tc.entries = map[string]themeEntry{}
	}
	if len(tc.entries) >= themeMaxEntries {
		for k, e := range tc.entries {
			if !now.Before(e.expires) {
				delete(tc.entries, k)
			}
		}
	}
	for k := range tc.entries {
		if len(tc.entries) < themeMaxEntries {
			break
		}
		delete(tc.entries, k)
	}
	tc.entries[u] = themeEntry{css: css, expires: now.Add(ttl)}
}

// errThemeRedirect refuses redirects: one could lead to a host that is not the issuer's.
var errThemeRedirect = errors.New("redirect refused")

// fetchTheme GETs the style document u (already checked by theme.Allowed)
// without any credentials: the access token goes to the FHIR API only.
// answered reports whether the EHR answered at all (a status, a redirect),
// as opposed to a network error or a timeout.
func (s *Server) fetchTheme(ctx context.Context, u string) (css []byte, answered bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, themeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, true, err
	}
	req.Header.Set("Accept", "application/json")
	hc := *s.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errThemeRedirect }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errors.Is(err, errThemeRedirect), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, true, errors.New("style document answered " + resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, themeMaxBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(body) > themeMaxBytes {
		return nil, true, errors.New("style document too large")
	}
	return theme.CSS(body), true, nil
}
