package server

import (
	"bytes"
	"context"
	"errors"
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

// Bounds of the update stream. A stream ends after liveStreamMax and the
// browser resumes it (Last-Event-ID), so that no proxy sees a request that
// never ends; a comment every liveKeepAlive keeps an idle one open.
const (
	liveStreamMax = 2 * time.Minute
	liveKeepAlive = 15 * time.Second
	// liveRetry is the reconnect delay the stream asks of the browser, in ms.
	liveRetry = 1000
	// pollHold bounds how long a long poll waits for a change; pollLinger
	// is how long it then waits for more before it answers.
	pollHold   = 2 * time.Second
	pollLinger = 20 * time.Millisecond
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
	if q == nil {
		q = url.Values{}
	}
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
	p.LivePoll = s.livePoll
	lv, err := renderLive(ctx, *p)
	if err != nil {
		return err
	}
	e.SetLive(liveKey(v.url(id), e.Token(), snap.Seq), &lv.state)
	return nil
}

// handleLive handles "GET /l/:launch/live": the updates of one view while
// its results arrive. A browser's EventSource gets an event stream of them,
// one event per change, until the list is complete; an htmx request (a long
// poll) gets the next one. Each update carries only what changed since the
// state the browser shows, named by the query's v or, when the browser
// resumes a stream, by Last-Event-ID. This route never starts a fetch from
// the EHR: it follows the launch's results in this server's cache, and
// tells the browser to load the view again when there are none.
func (s *Server) handleLive(c echo.Context) error {
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
	from := q.Get("v")
	if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
		from = id
	}
	var old *liveState
	var seq uint64
	if tok, n, ok := parseVersion(from); ok && e != nil && tok == e.Token() {
		if st, ok := e.Live(liveKey(v.url(l.ID), tok, n)); ok {
			old, seq = st.(*liveState), n
		}
	}
	if isHTMX(c) {
		return s.livePollAnswer(c, l, v, e, old, seq)
	}
	return s.liveStream(c, l, v, e, old, seq)
}

// liveUpdate is the update from old to snap's state of view v, and that
// state; a view that fails (the fetch ended in an error, the EHR sent
// another patient's data) is an error.
func (s *Server) liveUpdate(ctx context.Context, l *session.Launch, v labsRequest, snap labscache.Snapshot, old *liveState) ([]byte, *liveState, error) {
	props, err := s.viewProps(l, snap, v)
	if err != nil {
		return nil, nil, err
	}
	lv, err := renderLive(ctx, props)
	if err != nil {
		return nil, nil, err
	}
	b, err := lv.update(ctx, old)
	if err != nil {
		return nil, nil, err
	}
	if snap.Done {
		// Complete: nothing follows any more.
		b = append(b, `<div id="labs-live" hx-swap-oob="delete"></div>`...)
	}
	return b, &lv.state, nil
}

// liveStream writes the updates of view v as an event stream until the
// list is complete. Every write is flushed at once; X-Accel-Buffering asks
// proxies (nginx) not to hold them back. A proxy that buffers anyway only
// delays them: the stream ends when the list is complete, so the browser
// then gets them all, and the view is complete.
func (s *Server) liveStream(c echo.Context, l *session.Launch, v labsRequest, e *labscache.Entry, old *liveState, seq uint64) error {
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if e == nil {
		// Not (or no longer) cached here: the browser loads the view again,
		// which fetches the results.
		writeEvent(w, "reload", "", nil)
		w.Flush()
		return nil
	}
	ctx := c.Request().Context()
	_, _ = w.Write([]byte("retry: " + strconv.Itoa(liveRetry) + "\n\n"))
	end := time.Now().Add(liveStreamMax)
	viewURL := v.url(l.ID)
	for {
		snap := e.Snapshot()
		if old == nil || snap.Seq != seq {
			b, st, err := s.liveUpdate(ctx, l, v, snap, old)
			if err != nil {
				writeEvent(w, "", "", s.inBandError(c, err))
				writeEvent(w, "done", "", nil)
				w.Flush()
				return nil
			}
			e.SetLive(liveKey(viewURL, e.Token(), snap.Seq), st)
			writeEvent(w, "", liveVersion(e.Token(), snap.Seq), b)
			old, seq = st, snap.Seq
		}
		if snap.Done {
			writeEvent(w, "done", "", nil)
			w.Flush()
			return nil
		}
		w.Flush()
		wait, cancel := context.WithTimeout(ctx, min(liveKeepAlive, time.Until(end)))
		err := e.WaitChange(wait, seq)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case time.Now().After(end):
			// The browser resumes from the last event's id.
			return nil
		default:
			_, _ = w.Write([]byte(": keep-alive\n\n"))
		}
	}
}

// writeEvent writes one server-sent event: its type (none for a message),
// its id (none when ""), and data, one "data:" line per line of it. Line
// ends of every kind are made "\n" first: a lone "\r" in a lab's note would
// otherwise end the line early and let the text after it start a field.
// An event with an id and no data moves the browser's last event id
// without dispatching anything.
func writeEvent(w http.ResponseWriter, event, id string, data []byte) {
	var b bytes.Buffer
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if data != nil || event != "" {
		d := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		d = bytes.ReplaceAll(d, []byte("\r"), []byte("\n"))
		for _, line := range bytes.Split(d, []byte("\n")) {
			b.WriteString("data: ")
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	_, _ = w.Write(b.Bytes())
}

// livePollAnswer answers a long poll: it waits until the view changed since
// old (at most pollHold), then pollLinger more for changes close behind, and
// answers the update with, while the list is loading, the element that
// polls again.
func (s *Server) livePollAnswer(c echo.Context, l *session.Launch, v labsRequest, e *labscache.Entry, old *liveState, seq uint64) error {
	if e == nil {
		return &AppError{Status: http.StatusConflict, Reason: "labs.live_gone", Title: "This view has ended",
			Public: "Load the view again to see its results.", Err: errors.New("no cached results to follow")}
	}
	ctx := c.Request().Context()
	if old != nil {
		hold, cancel := context.WithTimeout(ctx, pollHold)
		if e.WaitChange(hold, seq) == nil && pollLinger > 0 {
			linger, cancelLinger := context.WithTimeout(ctx, pollLinger)
			_ = e.WaitDone(linger)
			cancelLinger()
		}
		cancel()
	}
	snap := e.Snapshot()
	b, st, err := s.liveUpdate(ctx, l, v, snap, old)
	if err != nil {
		return err
	}
	e.SetLive(liveKey(v.url(l.ID), e.Token(), snap.Seq), st)
	if !snap.Done {
		p := labs.Props{BasePath: labsPath(l.ID), Mode: v.mode, Filter: v.filter, Loading: &labs.Loading{},
			LiveURL: liveURL(l.ID, v, e.Token(), snap.Seq), LivePoll: true}
		var buf bytes.Buffer
		if err := labs.Live(p).Render(ctx, &buf); err != nil {
			return err
		}
		b = append(buf.Bytes(), b...)
	}
	return c.HTMLBlob(http.StatusOK, b)
}

// inBandPage is the error fragment written in a streamed page's view
// place (see streamLabsPage), logged as handleError logs a failed request.
func (s *Server) inBandPage(c echo.Context, err error) []byte {
	return s.errorFragment(c, err)
}

// inBandError is the error view that replaces a view whose updates failed
// (its fetch ended in an error, or the EHR sent another patient's data):
// the whole #labs fragment, rows and all, as an out-of-band swap. It is
// logged as handleError logs a failed request.
func (s *Server) inBandError(c echo.Context, err error) []byte {
	return oob(s.errorFragment(c, err), "true")
}

// errorFragment logs err as a failed request, in band, and renders its
// error fragment with the id of the view it replaces.
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
