package server

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"smartlabs/components/errorpage"
	"smartlabs/components/labs"
	"smartlabs/server/labscache"
	"smartlabs/server/session"
)

// Long-poll bounds: a poll is held until the view changed, at most
// pollHold; then it lingers pollLinger for changes close behind (pages of
// several windows landing together) before it answers, unless the list is
// complete. Each answer re-sends every summary line a page touched, so
// fewer answers send fewer bytes: at 150 ms per EHR request, 80 ms cut
// what the browser receives from 162 KB to 126 KB against 20 ms
// (make bench-e2e); a page's rows wait at most 80 ms for the answer.
const (
	pollHold   = 2 * time.Second
	pollLinger = 80 * time.Millisecond
)

// liveKey names the state a view showed at change seq of entry token.
func liveKey(viewURL, token string, seq uint64) string {
	return viewURL + "\n" + liveVersion(token, seq)
}

// liveVersion is the event id of an update: the entry and its change number.
func liveVersion(token string, seq uint64) string {
	return token + "." + strconv.FormatUint(seq, 10)
}

// parseVersion reads an event id written by liveVersion.
func parseVersion(s string) (token string, seq uint64, ok bool) {
	token, n, found := strings.Cut(s, ".")
	if !found {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return token, seq, err == nil
}

// liveURL is the address of the updates of view v of launch id, from
// change seq of the entry named token.
func liveURL(id string, v labsRequest, token string, seq uint64) string {
	q, _ := url.ParseQuery(strings.TrimPrefix(queryOf(v.url(id)), "?"))
	if v.key != "" {
		q.Set("a", v.key)
	}
	q.Set("v", liveVersion(token, seq))
	return labsPath(id) + "/live?" + q.Encode()
}

// followLive prepares p, a view of a list still loading, to follow its
// updates: the address of their stream, and the state p shows remembered
// with the entry, so that the first update sends only what changed since.
func (s *Server) followLive(ctx context.Context, e *labscache.Entry, id string, v labsRequest, snap labscache.Snapshot, p *labs.Props) error {
	p.LiveURL = liveURL(id, v, e.Token(), snap.Seq)
	lv, err := renderLive(ctx, *p)
	if err != nil {
		return err
	}
	lv.keep(e, liveKey(v.url(id), e.Token(), snap.Seq))
	return nil
}

// handleLive handles "GET /l/:launch/live": the next update of one view
// while its results arrive, a long poll of htmx. It answers once the view
// changed since the state the browser shows (named by the query's v), with
// only what changed, and, while the list is loading, the element that polls
// again. This route never starts a fetch from the EHR: it follows the
// launch's results in this server's cache, and answers the whole view
// (which fetches them) when there are none. Its errors replace the view.
func (s *Server) handleLive(c echo.Context) error {
	c.Response().Header().Set("HX-Retarget", "#labs")
	c.Response().Header().Set("HX-Reswap", "outerHTML")
	l, err := s.loadLaunch(c)
	if err != nil {
		return err
	}
	if err := s.checkLive(c.Request().Context(), l); err != nil {
		return err
	}
	q := c.QueryParams()
	key := q.Get("a")
	if key != "" && !analyteKeyRe.MatchString(key) {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	v := parseView(q, key)
	e := s.labsCache.Get(l.ID)
	if e == nil {
		// Not (or no longer) cached here: the whole view, fetched again.
		return s.serveLabs(c, key, false)
	}
	var old *liveState
	var seq uint64
	if tok, n, ok := parseVersion(q.Get("v")); ok && tok == e.Token() {
		if st, ok := e.Live(liveKey(v.url(l.ID), tok, n)); ok {
			old, seq = st.(*liveState), n
		}
	}
	return s.livePollAnswer(c, l, v, e, old, seq)
}

// livePollAnswer answers a long poll: it waits until the view changed since
// old (at most pollHold), then pollLinger more for changes close behind, and
// answers the update with, while the list is loading, the element that
// polls again.
func (s *Server) livePollAnswer(c echo.Context, l *session.Launch, v labsRequest, e *labscache.Entry, old *liveState, seq uint64) error {
	ctx := c.Request().Context()
	if old != nil {
		hold, cancel := context.WithTimeout(ctx, pollHold)
		if e.WaitChange(hold, seq) == nil {
			linger, cancelLinger := context.WithTimeout(ctx, pollLinger)
			_ = e.WaitDone(linger)
			cancelLinger()
		}
		cancel()
	}
	snap := e.Snapshot()
	props, err := s.viewProps(l, snap, v)
	if err != nil {
		return err
	}
	lv, err := renderLive(ctx, props)
	if err != nil {
		return err
	}
	b, err := lv.update(ctx, old)
	if err != nil {
		return err
	}
	lv.keep(e, liveKey(v.url(l.ID), e.Token(), snap.Seq))
	// The answer replaces the polling element: with the next one while the
	// list is loading, with nothing once it is complete.
	h := c.Response().Header()
	h.Del("HX-Retarget")
	h.Del("HX-Reswap")
	if !snap.Done {
		props.LiveURL = liveURL(l.ID, v, e.Token(), snap.Seq)
		var buf bytes.Buffer
		if err := labs.Live(props).Render(ctx, &buf); err != nil {
			return err
		}
		b = append(buf.Bytes(), b...)
	}
	return c.HTMLBlob(http.StatusOK, b)
}

// errorFragment logs err as a failed request, in band, and renders its
// error fragment with the id of the view it replaces: it is written in a
// streamed page's view place (see streamLabsPage).
func (s *Server) errorFragment(c echo.Context, err error) []byte {
	ae := asAppError(err)
	rid := requestID(c)
	ev := s.log.Info()
	if ae.Status >= 500 {
		ev = s.log.Error()
	}
	ev.Str("request_id", rid).Str("route", routeOf(c)).Int("status", ae.Status).Str("reason", ae.Reason).Bool("in_band", true).
		AnErr("error", ae.Err).Msg("request failed")
	props := errorpage.Props{Status: ae.Status, Title: ae.Title, Message: ae.Public, RequestID: rid, Actions: ae.Actions, ID: "labs"}
	var buf bytes.Buffer
	if rerr := errorpage.Fragment(props).Render(c.Request().Context(), &buf); rerr != nil {
		s.log.Error().Str("request_id", rid).AnErr("error", rerr).Msg("render error fragment")
		buf.Reset()
		buf.WriteString(`<section id="labs" role="alert" data-testid="error"><p>Something went wrong (ref ` + rid + `)</p></section>`)
	}
	return buf.Bytes()
}
