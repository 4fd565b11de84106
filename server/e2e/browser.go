// Package e2e drives a headless Chromium for smartlabs' browser tests. It
// reaches into cross-site iframes, which Chromium runs in their own renderer
// process (out-of-process iframes, OOPIFs), and records every response of a tab.
//
// How: chromedp already auto-attaches each tab to its child targets (flat
// sessions) but drops their messages. The harness wraps chromedp's connection
// (a tap, see tap.go) that sees every message. Each tab re-arms the auto-attach
// with waitForDebuggerOnStart, so a new OOPIF is paused until the tap has sent
// Runtime.enable and Network.enable to its session, and then resumed: no request
// of the frame is missed. To act in a frame, the harness finds the frame id of
// the iframe element (DOM.describeNode), then runs JavaScript in the OOPIF
// session whose target id is that frame id, or, when the frame is same-site
// and so in the page's process, in the frame's main-world context of the page
// session. It resolves the frame anew on every call, because a navigating
// frame moves between processes. Clicks are real mouse events sent to the
// page, which the browser routes to the frame's process. Site isolation stays
// on and third-party cookies stay blocked.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// ChromiumPath is where the tests expect the browser (Debian's chromium package).
const ChromiumPath = "/usr/bin/chromium"

// RequireEnv names the variable that turns a missing browser from a skip into
// a failure; CI sets it so that browser tests never pass by not running.
const RequireEnv = "SMARTLABS_REQUIRE_BROWSER"

// DebugEnv names the variable that prints one line per protocol message
// (direction, id, session, method; never parameters) to standard error.
const DebugEnv = "SMARTLABS_E2E_DEBUG"

// opTimeout bounds every single action that takes no timeout of its own.
const opTimeout = 10 * time.Second

// Browser is one headless Chromium with a fresh profile.
type Browser struct {
	ctx         context.Context // the browser's first chromedp context
	cancelCtx   context.CancelFunc
	cancelAlloc context.CancelFunc
	tap         *tap
	dataDir     string
	closeOnce   sync.Once
}

// NewBrowser starts Chromium for tb and closes it in tb.Cleanup. It skips tb
// when the browser is missing, unless RequireEnv is set.
func NewBrowser(tb testing.TB) *Browser {
	tb.Helper()
	switch skip, fail := checkBrowser(ChromiumPath, os.Getenv); {
	case fail != "":
		tb.Fatal(fail)
	case skip != "":
		tb.Skip(skip)
	}
	b := &Browser{tap: newTap(), dataDir: tb.TempDir()}
	if err := writePrefs(b.dataDir); err != nil {
		tb.Fatalf("e2e: write profile preferences: %v", err)
	}
	if os.Getenv(DebugEnv) != "" {
		// Standard error, not tb.Logf: the reader goroutine can outlive tb.
		b.tap.debugf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "cdp: "+format+"\n", args...) }
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		// Only flags that do not change how cookies, storage or site isolation
		// work: chromedp's DefaultExecAllocatorOptions are not used, so that no
		// feature switch of theirs can slip into the cookie behaviour.
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(b.dataDir),
		chromedp.WindowSize(1280, 900),
		// A websocket instead of chromedp's default pipe, only because the
		// dialer is the hook that lets the tap wrap the connection.
		chromedp.WithDialer(func(ctx context.Context, wsURL string) (chromedp.Transport, error) {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			conn, err := remote.DialContext(dctx, wsURL)
			if err != nil {
				return nil, err
			}
			b.tap.inner = conn
			return b.tap, nil
		}),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b.cancelAlloc = cancelAlloc
	b.ctx, b.cancelCtx = chromedp.NewContext(allocCtx, chromedp.WithLogf(discard), chromedp.WithErrorf(discard))
	tb.Cleanup(b.Close)
	// The first Do starts the browser and binds it to b.ctx, so it has no timeout.
	if err := chromedp.Do(b.ctx); err != nil {
		tb.Fatalf("e2e: start chromium: %v", err)
	}
	return b
}

// checkBrowser decides what a test does when the browser at path is missing:
// skip it, or fail it when RequireEnv is set, so that CI never passes a browser
// test by not running it. Both results are empty when the browser is there.
func checkBrowser(path string, getenv func(string) string) (skip, fail string) {
	info, err := os.Stat(path)
	if err == nil && !info.IsDir() {
		return "", ""
	}
	if getenv(RequireEnv) != "" {
		return "", fmt.Sprintf("e2e: %s is set but there is no browser at %s", RequireEnv, path)
	}
	return fmt.Sprintf("e2e: no browser at %s (apt-get install chromium); set %s to make this a failure", path, RequireEnv), ""
}

// prefs is the profile's Preferences file. cookie_controls_mode 1 blocks
// third-party cookies, as Safari, Firefox and Chrome's incognito do; Debian's
// headless Chromium 156 blocks them by default too, but the setting is explicit
// so that a change of that default cannot make unpartitioned cookies work in
// the EHR's iframe in tests only.
const prefs = `{"profile": {"cookie_controls_mode": 1}}`

// writePrefs writes prefs into the fresh profile dir before Chromium starts.
func writePrefs(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(prefs), 0o600)
}

// discard drops chromedp's log lines, which can quote whole protocol messages
// (URLs with codes or tokens among them).
func discard(string, ...any) {}

// Close stops the browser and waits for its process to exit. NewBrowser
// registers it with Cleanup; calling it earlier is fine.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(ctx) // a graceful Browser.close
		b.cancelCtx()
		b.cancelAlloc() // kills what is left and waits for the process
	})
}

// DataDir returns the profile directory (--user-data-dir) of the browser.
func (b *Browser) DataDir() string { return b.dataDir }

// Tab is one tab (page target) of a Browser. Its methods are not safe for
// concurrent use; use one Tab per goroutine.
type Tab struct {
	ctx context.Context
	b   *Browser
	st  *tabState
}

// NewTab opens a new tab in b's profile, so it shares the cookie jar and the
// storage with b's other tabs. tb.Cleanup closes it.
func (b *Browser) NewTab(tb testing.TB) *Tab {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb.Cleanup(cancel)
	// The first Do opens the tab and binds it to ctx, so it has no timeout.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("e2e: open tab: %v", err)
	}
	tgt := chromedp.FromContext(ctx).Target
	t := &Tab{ctx: ctx, b: b, st: newTabState(tgt.SessionID, tgt.TargetID)}
	b.tap.register(tgt.SessionID, t.st, false)
	tb.Cleanup(func() { b.tap.unregister(tgt.SessionID) })
	// chromedp already auto-attaches to child targets; this makes each one
	// wait until the tap has enabled the Network domain in it.
	err := t.withTimeout(opTimeout, func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, target.SetAutoAttach, autoAttachParams)
		return err
	})
	if err != nil {
		tb.Fatalf("e2e: auto-attach: %v", err)
	}
	return t
}

// AddInitScript makes js run at the start of every document the tab loads
// from now on, in the page and in every frame, out-of-process iframes
// included (Page.addScriptToEvaluateOnNewDocument): e.g. an observer that
// timestamps what the page shows, without polling it from outside.
func (t *Tab) AddInitScript(js string) error {
	t.st.mu.Lock()
	t.st.initScripts = append(t.st.initScripts, js)
	sessions := make([]target.SessionID, 0, len(t.st.sessions))
	for sid := range t.st.sessions {
		sessions = append(sessions, sid)
	}
	t.st.mu.Unlock()
	return t.withTimeout(opTimeout, func(ctx context.Context) error {
		for _, sid := range sessions {
			if _, err := call(ctx, t.b.tap, sid, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
				return err
			}
		}
		return nil
	})
}

// withTimeout runs fn with a context that ends after d.
func (t *Tab) withTimeout(d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	return fn(ctx)
}

// Navigate loads url in the tab and waits for the top document's load event.
func (t *Tab) Navigate(url string) error {
	return t.withTimeout(20*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Navigate(url))
	})
}

// Reload reloads the top document and waits for its load event.
func (t *Tab) Reload() error {
	return t.withTimeout(20*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Reload())
	})
}

// SetViewport sets the size of the tab's viewport in CSS pixels.
func (t *Tab) SetViewport(w, h int) error {
	return t.withTimeout(opTimeout, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h)))
	})
}

// Screenshot writes a PNG of the visible page, iframes included, to path.
func (t *Tab) Screenshot(path string) error {
	return t.withTimeout(opTimeout, func(ctx context.Context) error {
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return err
		}
		return os.WriteFile(path, buf, 0o644)
	})
}

// frameRef says where JavaScript for one frame runs: a session, and the id of
// the frame's main-world context in it ("" for the session's own main frame).
type frameRef struct {
	session   target.SessionID
	contextID string
}

// resolve finds the frame that frameSel names, anew on every call, because a
// navigating iframe moves between processes (and so between sessions).
func (t *Tab) resolve(ctx context.Context, frameSel string) (frameRef, error) {
	page := t.st.page
	if frameSel == "" {
		return frameRef{session: page}, nil
	}
	const group = "e2e-resolve"
	res, err := call(ctx, t.b.tap, page, runtime.Evaluate, runtime.EvaluateParams{
		Expression:  "document.querySelector(" + jsString(frameSel) + ")",
		ObjectGroup: group,
	})
	if err != nil {
		return frameRef{}, err
	}
	defer func() {
		_, _ = call(ctx, t.b.tap, page, runtime.ReleaseObjectGroup, runtime.ReleaseObjectGroupParams{ObjectGroup: group})
	}()
	if res.ExceptionDetails != nil {
		return frameRef{}, fmt.Errorf("e2e: bad frame selector %q: %s", frameSel, exceptionText(res.ExceptionDetails))
	}
	if res.Result == nil || res.Result.ObjectID == "" {
		return frameRef{}, fmt.Errorf("e2e: no element matches frame selector %q", frameSel)
	}
	node, err := call(ctx, t.b.tap, page, dom.DescribeNode, dom.DescribeNodeParams{ObjectID: res.Result.ObjectID})
	if err != nil {
		return frameRef{}, err
	}
	if node.Node == nil || node.Node.FrameID == "" {
		return frameRef{}, fmt.Errorf("e2e: %q is not a frame element", frameSel)
	}
	frameID := node.Node.FrameID

	t.st.mu.Lock()
	defer t.st.mu.Unlock()
	// An out-of-process iframe is a target whose id is the frame's id.
	for sid, s := range t.st.sessions {
		if sid != page && string(s.targetID) == string(frameID) {
			return frameRef{session: sid}, nil
		}
	}
	// Otherwise the frame lives in the page's process.
	if id := t.st.sessions[page].contexts[frameID]; id != "" {
		return frameRef{session: page, contextID: id}, nil
	}
	return frameRef{}, fmt.Errorf("e2e: frame %q has no JavaScript context yet", frameSel)
}

// evalIn runs the expression expr in ref and decodes its JSON value into out.
func (t *Tab) evalIn(ctx context.Context, ref frameRef, expr string, out any) error {
	res, err := call(ctx, t.b.tap, ref.session, runtime.Evaluate, runtime.EvaluateParams{
		Expression:      expr,
		UniqueContextID: ref.contextID,
		ReturnByValue:   new(true),
		AwaitPromise:    new(true),
	})
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("e2e: script error: %s", exceptionText(res.ExceptionDetails))
	}
	if out == nil || res.Result == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// eval resolves frameSel and runs expr there.
func (t *Tab) eval(ctx context.Context, frameSel, expr string, out any) error {
	ref, err := t.resolve(ctx, frameSel)
	if err != nil {
		return err
	}
	return t.evalIn(ctx, ref, expr, out)
}

// Eval runs the JavaScript expression js in the frame that frameSel names
// ("" is the top document), awaits it when it is a promise, and decodes its
// JSON value into out (out may be nil).
func (t *Tab) Eval(frameSel, js string, out any) error {
	return t.EvalWithin(frameSel, js, out, 20*time.Second)
}

// EvalWithin is Eval with the caller's bound, for scripts that take long on
// a loaded machine (an accessibility audit of a long page).
func (t *Tab) EvalWithin(frameSel, js string, out any, d time.Duration) error {
	return t.withTimeout(d, func(ctx context.Context) error {
		return t.eval(ctx, frameSel, js, out)
	})
}

// textJS returns the visible text of the first element that matches a selector,
// and whether there was one.
const textJS = `((sel) => {
	const el = document.querySelector(sel);
	return el ? {found: true, text: el.innerText ?? el.textContent} : {found: false, text: ""};
})`

type textResult struct {
	Found bool   `json:"found"`
	Text  string `json:"text"`
}

// Text returns the visible text (innerText) of the first element that matches
// cssSel in the frame.
func (t *Tab) Text(frameSel, cssSel string) (string, error) {
	var r textResult
	if err := t.Eval(frameSel, textJS+"("+jsString(cssSel)+")", &r); err != nil {
		return "", err
	}
	if !r.Found {
		return "", fmt.Errorf("e2e: no element matches %q in frame %q", cssSel, frameSel)
	}
	return r.Text, nil
}

// WaitText waits until the first element that matches cssSel in the frame
// contains substr. It keeps trying while the frame navigates or changes process.
func (t *Tab) WaitText(frameSel, cssSel, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	expr := textJS + "(" + jsString(cssSel) + ")"
	var last textResult
	var lastErr error
	seen := false
	for {
		var r textResult
		err := t.withTimeout(max(min(time.Until(deadline), 2*time.Second), 500*time.Millisecond), func(ctx context.Context) error {
			return t.eval(ctx, frameSel, expr, &r)
		})
		if err == nil {
			if r.Found && strings.Contains(r.Text, substr) {
				return nil
			}
			last, seen = r, true
		}
		lastErr = err
		if time.Now().After(deadline) || t.ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case seen && last.Found:
		return fmt.Errorf("e2e: waiting for %q in %q (frame %q): text is %q", substr, cssSel, frameSel, truncate(last.Text, 200))
	case seen:
		return fmt.Errorf("e2e: waiting for %q: no element matches %q in frame %q", substr, cssSel, frameSel)
	}
	return fmt.Errorf("e2e: waiting for %q in %q (frame %q): %w", substr, cssSel, frameSel, lastErr)
}

// Count returns the number of elements that match cssSel in the frame.
func (t *Tab) Count(frameSel, cssSel string) (int, error) {
	var n int
	err := t.Eval(frameSel, "document.querySelectorAll("+jsString(cssSel)+").length", &n)
	return n, err
}

// HTML returns the outerHTML of the frame's document element.
func (t *Tab) HTML(frameSel string) (string, error) {
	var s string
	err := t.Eval(frameSel, "document.documentElement.outerHTML", &s)
	return s, err
}

// FrameURL returns the URL of the frame's current document.
func (t *Tab) FrameURL(frameSel string) (string, error) {
	var s string
	err := t.Eval(frameSel, "location.href", &s)
	return s, err
}

// Storage returns the localStorage and sessionStorage entries of the frame's
// origin, keyed "local:<key>" and "session:<key>". A storage that the browser
// refuses to the frame is left out.
func (t *Tab) Storage(frameSel string) (map[string]string, error) {
	const js = `(() => {
		const out = {};
		for (const [prefix, name] of [["local:", "localStorage"], ["session:", "sessionStorage"]]) {
			try {
				const s = window[name];
				for (let i = 0; i < s.length; i++) { const k = s.key(i); out[prefix + k] = s.getItem(k); }
			} catch (e) {}
		}
		return out;
	})()`
	out := map[string]string{}
	err := t.Eval(frameSel, js, &out)
	return out, err
}

// nextFrameJS waits until the browser has drawn the current layout, so that its
// own hit testing, which routes input to iframe processes, sees what the
// script just scrolled.
const nextFrameJS = `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`

// clickJS scrolls the first element that matches a selector into view and
// returns the centre of its box, and whether a click there hits it. It also
// arms a one-shot mousedown listener that records whether the next press
// lands on the element.
const clickJS = `(async (sel) => {
	const el = document.querySelector(sel);
	if (!el) return {found: false};
	el.scrollIntoView({block: "center", inline: "center"});
	await ` + nextFrameJS + `;
	const r = el.getBoundingClientRect();
	const x = r.left + r.width / 2, y = r.top + r.height / 2;
	const hit = document.elementFromPoint(x, y);
	window.__e2ePressLanded = false;
	window.addEventListener("mousedown", (e) => { window.__e2ePressLanded = el.contains(e.target); }, {capture: true, once: true});
	return {found: true, x, y, w: r.width, h: r.height, hits: !!hit && el.contains(hit)};
})`

// frameBoxJS returns where a frame element's content box starts in the top
// viewport, after scrolling the top document so that the point (cx, cy) of the
// frame's viewport is in view, and whether that point hits the frame element.
const frameBoxJS = `(async (sel, cx, cy) => {
	const el = document.querySelector(sel);
	if (!el) return {found: false};
	const box = () => {
		const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
		return [r.left + el.clientLeft + parseFloat(cs.paddingLeft), r.top + el.clientTop + parseFloat(cs.paddingTop)];
	};
	let [x, y] = box();
	if (x + cx < 0 || y + cy < 0 || x + cx >= innerWidth || y + cy >= innerHeight) {
		window.scrollBy(x + cx - innerWidth / 2, y + cy - innerHeight / 2);
		[x, y] = box();
	}
	await ` + nextFrameJS + `;
	return {found: true, x, y, hits: document.elementFromPoint(x + cx, y + cy) === el};
})`

type box struct {
	Found bool    `json:"found"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Hits  bool    `json:"hits"`
}

// Click clicks the first element that matches cssSel in the frame with real
// mouse events, sent to the page at the element's centre: the browser routes
// them to the right process, as it does for a person's click. It fails when
// another element covers that point, in the frame or in the page.
func (t *Tab) Click(frameSel, cssSel string) error {
	return t.withTimeout(opTimeout, func(ctx context.Context) error {
		ref, err := t.resolve(ctx, frameSel)
		if err != nil {
			return err
		}
		var el box
		if err := t.evalIn(ctx, ref, clickJS+"("+jsString(cssSel)+")", &el); err != nil {
			return err
		}
		switch {
		case !el.Found:
			return fmt.Errorf("e2e: no element matches %q in frame %q", cssSel, frameSel)
		case el.W == 0 || el.H == 0:
			return fmt.Errorf("e2e: %q in frame %q has no size", cssSel, frameSel)
		case !el.Hits:
			return fmt.Errorf("e2e: %q in frame %q is covered by another element", cssSel, frameSel)
		}
		x, y := el.X, el.Y
		if frameSel != "" {
			// The frame's viewport sits at the content box of its element.
			var off box
			expr := fmt.Sprintf("%s(%s, %g, %g)", frameBoxJS, jsString(frameSel), el.X, el.Y)
			if err := t.evalIn(ctx, frameRef{session: t.st.page}, expr, &off); err != nil {
				return err
			}
			switch {
			case !off.Found:
				return fmt.Errorf("e2e: no element matches frame selector %q", frameSel)
			case !off.Hits:
				return fmt.Errorf("e2e: %q in frame %q is outside the page's view or covered in the page", cssSel, frameSel)
			}
			x, y = off.X+el.X, off.Y+el.Y
		}
		mouse := func(typ input.DispatchMouseEventType) error {
			p := input.DispatchMouseEventParams{Type: typ, X: x, Y: y}
			if typ != input.DispatchMouseEventTypeMouseMoved {
				p.Button, p.ClickCount = input.MouseButtonLeft, 1
			}
			_, err := call(ctx, t.b.tap, t.st.page, input.DispatchMouseEvent, p)
			return err
		}
		if err := mouse(input.DispatchMouseEventTypeMouseMoved); err != nil {
			return err
		}
		if err := mouse(input.DispatchMouseEventTypeMousePressed); err != nil {
			return err
		}
		// Check where the press landed before the release, which may navigate.
		var landed bool
		checkErr := t.evalIn(ctx, ref, "window.__e2ePressLanded === true", &landed)
		if err := mouse(input.DispatchMouseEventTypeMouseReleased); err != nil {
			return err
		}
		switch {
		case checkErr != nil:
			return fmt.Errorf("e2e: click on %q in frame %q: %w", cssSel, frameSel, checkErr)
		case !landed:
			return fmt.Errorf("e2e: click on %q in frame %q did not reach the element", cssSel, frameSel)
		}
		return nil
	})
}

// Cookies returns every cookie of the profile, partitioned cookies included
// (their PartitionKey is set).
func (t *Tab) Cookies() ([]*network.Cookie, error) {
	var cookies []*network.Cookie
	err := t.withTimeout(opTimeout, func(ctx context.Context) error {
		res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{})
		cookies = res.Cookies
		return err
	})
	return cookies, err
}

// Responses returns every response that the tab received so far, in all its
// frames, out-of-process iframes included, in the order of arrival. It waits
// briefly for bodies that are still being fetched.
func (t *Tab) Responses() []Response {
	return t.st.snapshot(5 * time.Second)
}

// RequestURLs returns the URL (with its fragment) of every request the tab
// sent, redirects included, so that a test can check that no secret is in one.
func (t *Tab) RequestURLs() []string {
	t.st.mu.Lock()
	defer t.st.mu.Unlock()
	return append([]string(nil), t.st.requestURLs...)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // A string always marshals.
	}
	return string(b)
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
