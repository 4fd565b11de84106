package e2e

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/cdp"
	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Response is one HTTP response that a tab received, in any of its frames.
// A redirect is a Response of its own, with its 3xx status and no body.
type Response struct {
	URL      string
	Status   int
	Headers  http.Header // as Chrome reports them; see RawHeaders for Set-Cookie
	MIMEType string
	Type     string // the resource type: Document, Script, XHR, Fetch, ...
	FrameID  string
	// RawHeaders are the headers as they came over the wire, Set-Cookie
	// included, when Chrome reported them (Network.responseReceivedExtraInfo).
	RawHeaders http.Header
	// Body is the body of a text response (HTML, JSON, JavaScript, CSS, plain
	// text); it is empty for other types and for redirects.
	Body string
	// BodyErr says why Body is empty for a text response, if Chrome refused it.
	BodyErr string

	requestID network.RequestID
}

// session is one CDP session of a tab: the page itself or an out-of-process
// iframe (or worker) that the page auto-attached.
type session struct {
	targetID target.ID
	kind     string
	// contexts maps a frame id to the unique id of its main-world JavaScript
	// context; unique ids, unlike plain ones, are never reused across processes.
	contexts map[cdp.FrameID]string
}

// tabState is what the tap records for one tab. The tap writes it from the
// goroutine that reads the connection; the Tab methods read it.
type tabState struct {
	mu          sync.Mutex
	page        target.SessionID
	sessions    map[target.SessionID]*session
	byRequest   map[network.RequestID]*Response // the current hop of each request
	extra       map[network.RequestID][]network.Headers
	responses   []*Response
	requestURLs []string
	pending     int // getResponseBody commands that have not replied
	idle        *sync.Cond
	// initScripts run at the start of every document of the tab, in every
	// frame (AddInitScript).
	initScripts []string
}

func newTabState(page target.SessionID, pageTarget target.ID) *tabState {
	st := &tabState{
		page:      page,
		sessions:  map[target.SessionID]*session{page: {targetID: pageTarget, kind: "page", contexts: map[cdp.FrameID]string{}}},
		byRequest: make(map[network.RequestID]*Response),
		extra:     make(map[network.RequestID][]network.Headers),
	}
	st.idle = sync.NewCond(&st.mu)
	return st
}

// childSetup is what the tap sends to a new child session, in this order:
// domains first, then the auto-attach for nested iframes, and the resume last,
// so that no request of the child happens before Network.enable. The tab's
// init scripts are added just before the resume (after Page.enable, without
// which an out-of-process iframe does not run them).
var childSetup = []struct {
	method string
	params any
}{
	{runtime.Enable.Method, cdp.Empty{}},
	{network.Enable.Method, network.EnableParams{}},
	{target.SetAutoAttach.Method, autoAttachParams},
	{runtime.RunIfWaitingForDebugger.Method, cdp.Empty{}},
}

// autoAttachParams pause each new child target until the tap has enabled the
// Network domain in it, so that its first request is recorded too.
var autoAttachParams = target.SetAutoAttachParams{AutoAttach: true, WaitForDebuggerOnStart: true, Flatten: new(true)}

// handle records one event of one of the tab's sessions.
func (st *tabState) handle(t *tap, msg *cdproto.Message) {
	switch string(msg.Method) {
	case target.AttachedToTarget.Method,
		target.DetachedFromTarget.Method,
		runtime.ExecutionContextCreated.Method,
		runtime.ExecutionContextDestroyed.Method,
		runtime.ExecutionContextsCleared.Method,
		network.RequestWillBeSent.Method,
		network.ResponseReceived.Method,
		network.ResponseReceivedExtraInfo.Method,
		network.LoadingFinished.Method:
	default:
		return
	}
	ev, err := cdproto.UnmarshalMessage(msg, chromedp.DefaultUnmarshalOptions)
	if err != nil {
		return
	}
	sid := msg.SessionID
	switch ev := ev.(type) {
	case *target.EventAttachedToTarget:
		st.mu.Lock()
		st.sessions[ev.SessionID] = &session{targetID: ev.TargetInfo.TargetID, kind: ev.TargetInfo.Type, contexts: map[cdp.FrameID]string{}}
		st.mu.Unlock()
		t.register(ev.SessionID, st, true)
		scripts := append([]string(nil), st.initScripts...)
		// Write from another goroutine: this one reads the connection.
		go func(child target.SessionID) {
			for i, c := range childSetup {
				if i == len(childSetup)-1 {
					// Before the child resumes, so its first document runs them too.
					if len(scripts) > 0 {
						if err := t.send(child, page.Enable.Method, page.EnableParams{}, nil); err != nil {
							return
						}
					}
					for _, js := range scripts {
						if err := t.send(child, page.AddScriptToEvaluateOnNewDocument.Method, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}, nil); err != nil {
							return
						}
					}
				}
				if err := t.send(child, c.method, c.params, nil); err != nil {
					return
				}
			}
		}(ev.SessionID)
	case *target.EventDetachedFromTarget:
		st.mu.Lock()
		delete(st.sessions, ev.SessionID)
		st.mu.Unlock()
		t.unregister(ev.SessionID)
	case *runtime.EventExecutionContextCreated:
		var aux struct {
			IsDefault bool        `json:"isDefault"`
			FrameID   cdp.FrameID `json:"frameId"`
		}
		if err := jsonv2.Unmarshal(ev.Context.AuxData, &aux, chromedp.DefaultUnmarshalOptions); err != nil || !aux.IsDefault {
			return
		}
		st.mu.Lock()
		if s := st.sessions[sid]; s != nil {
			s.contexts[aux.FrameID] = ev.Context.UniqueID
		}
		st.mu.Unlock()
	case *runtime.EventExecutionContextDestroyed:
		st.mu.Lock()
		if s := st.sessions[sid]; s != nil {
			for f, id := range s.contexts {
				if id == ev.ExecutionContextUniqueID {
					delete(s.contexts, f)
				}
			}
		}
		st.mu.Unlock()
	case *runtime.EventExecutionContextsCleared:
		st.mu.Lock()
		if s := st.sessions[sid]; s != nil {
			clear(s.contexts)
		}
		st.mu.Unlock()
	case *network.EventRequestWillBeSent:
		st.mu.Lock()
		u := ev.Request.URL + ev.Request.URLFragment
		st.requestURLs = append(st.requestURLs, u)
		if ev.RedirectResponse != nil {
			// The previous hop ended with this redirect.
			st.addResponse(ev.RequestID, ev.RedirectResponse, string(ev.Type), string(ev.FrameID))
		}
		st.mu.Unlock()
	case *network.EventResponseReceived:
		st.mu.Lock()
		st.addResponse(ev.RequestID, ev.Response, string(ev.Type), string(ev.FrameID))
		st.mu.Unlock()
	case *network.EventResponseReceivedExtraInfo:
		st.mu.Lock()
		st.extra[ev.RequestID] = append(st.extra[ev.RequestID], ev.Headers)
		st.attachExtra(ev.RequestID)
		st.mu.Unlock()
	case *network.EventLoadingFinished:
		st.mu.Lock()
		r := st.byRequest[ev.RequestID]
		if r == nil || r.Body != "" || !isText(r.MIMEType) || r.Status < 200 || r.Status == 204 || (r.Status >= 300 && r.Status < 400) {
			st.mu.Unlock()
			return
		}
		st.pending++
		st.mu.Unlock()
		done := func(m *cdproto.Message) {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.pending--
			st.idle.Broadcast()
			switch {
			case m == nil:
				r.BodyErr = "no reply"
			case m.Error != nil:
				r.BodyErr = m.Error.Error()
			default:
				var res network.GetResponseBodyResult
				if err := jsonv2.Unmarshal(m.Result, &res, chromedp.DefaultUnmarshalOptions); err != nil {
					r.BodyErr = err.Error()
					return
				}
				r.Body = string(res.Body)
			}
		}
		go func() {
			if err := t.send(sid, network.GetResponseBody.Method, network.GetResponseBodyParams{RequestID: ev.RequestID}, done); err != nil {
				done(nil)
			}
		}()
	}
}

// addResponse records a response hop; the caller holds st.mu.
func (st *tabState) addResponse(id network.RequestID, resp *network.Response, typ, frame string) {
	r := &Response{
		URL:       resp.URL,
		Status:    int(resp.Status),
		Headers:   toHeader(resp.Headers),
		MIMEType:  resp.MimeType,
		Type:      typ,
		FrameID:   frame,
		requestID: id,
	}
	st.byRequest[id] = r
	st.responses = append(st.responses, r)
	st.attachExtra(id)
}

// attachExtra gives the raw headers of a request to its hops in order, because
// the extra-info events and the responses of one request can come in any order;
// the caller holds st.mu.
func (st *tabState) attachExtra(id network.RequestID) {
	var hops []*Response
	for _, r := range st.responses {
		if r.requestID == id {
			hops = append(hops, r)
		}
	}
	for i, h := range st.extra[id] {
		if i < len(hops) && hops[i].RawHeaders == nil {
			hops[i].RawHeaders = toHeader(h)
		}
	}
}

// snapshot returns copies of the responses, after waiting up to wait for the
// bodies that are still on their way.
func (st *tabState) snapshot(wait time.Duration) []Response {
	st.mu.Lock()
	defer st.mu.Unlock()
	deadline := time.Now().Add(wait)
	for st.pending > 0 && time.Now().Before(deadline) {
		// sync.Cond has no timeout, so a timer wakes the wait up.
		tm := time.AfterFunc(50*time.Millisecond, st.idle.Broadcast)
		st.idle.Wait()
		tm.Stop()
	}
	out := make([]Response, len(st.responses))
	for i, r := range st.responses {
		out[i] = *r
		out[i].Headers = r.Headers.Clone()
		out[i].RawHeaders = r.RawHeaders.Clone()
	}
	return out
}

// isText reports whether a body of this MIME type is worth keeping as text.
func isText(mime string) bool {
	switch {
	case strings.HasPrefix(mime, "text/"),
		strings.HasSuffix(mime, "json"),
		strings.HasSuffix(mime, "javascript"),
		strings.HasSuffix(mime, "xml"):
		return true
	}
	return false
}

// toHeader turns CDP headers, where Chrome joins repeated headers with a new
// line, into an http.Header.
func toHeader(h network.Headers) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		s, ok := v.(string)
		if !ok {
			continue
		}
		for _, line := range strings.Split(s, "\n") {
			out.Add(k, line)
		}
	}
	return out
}
