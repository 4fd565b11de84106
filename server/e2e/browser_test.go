package e2e

import (
	"bytes"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sites are the two test servers: the app on http://localhost:<port> and the
// "EHR" parent on http://127.0.0.1:<port>. The hosts differ in site, so the
// app's iframe is cross-site, as inside Epic.
type sites struct {
	app, parent string
}

// mustServe serves h on a fresh loopback port and returns its port.
func mustServe(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// mustSites starts the app and the parent.
func mustSites(t *testing.T) sites {
	t.Helper()
	var s sites
	app := http.NewServeMux()
	// /set sets a cookie and sends the frame through the parent's host and back,
	// like an OAuth round trip.
	app.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		c := "__Host-" + name + "=v; Path=/; Secure; HttpOnly; SameSite=None"
		if r.URL.Query().Get("partitioned") == "1" {
			c += "; Partitioned"
		}
		w.Header().Add("Set-Cookie", c)
		http.Redirect(w, r, s.parent+"/bounce?name="+name, http.StatusSeeOther)
	})
	app.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		got := "no"
		if c, err := r.Cookie("__Host-" + r.URL.Query().Get("name")); err == nil && c.Value == "v" {
			got = "yes"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>app</title>
<p data-testid="got">%s</p>
<p data-testid="clicked">not yet</p>
<p data-testid="data">loading</p>
<button data-testid="btn" style="margin-top:400px">Press</button>
<ul><li class="item">a</li><li class="item">b</li><li class="item">c</li></ul>
<a data-testid="to-parent" href="%s/inner">to the EHR's host</a>
<div style="position:relative;width:80px"><button data-testid="covered">hidden</button><div style="position:absolute;inset:0;background:#fff"></div></div>
<script src="/app.js"></script>`, got, s.parent)
	})
	app.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `// app-script-marker
document.querySelector('[data-testid="btn"]').addEventListener('click', (e) => {
  document.querySelector('[data-testid="clicked"]').textContent = e.isTrusted ? 'clicked (trusted)' : 'clicked (synthetic)';
});
localStorage.setItem('k', 'local-v');
sessionStorage.setItem('s', 'session-v');
window.appReady = true;
fetch('/data.json').then((r) => r.json()).then((d) => {
  document.querySelector('[data-testid="data"]').textContent = d.ok ? 'loaded' : 'bad';
});`)
	})
	app.HandleFunc("GET /data.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	s.app = "http://localhost:" + mustServe(t, app)

	parent := http.NewServeMux()
	parent.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		src := r.URL.Query().Get("src")
		fmt.Fprintf(w, `<!doctype html><title>ehr</title><h1 data-testid="ehr">EHR</h1>
<iframe data-testid="app-frame" style="border:7px solid #999;padding:5px" width="900" height="500" src="%s"></iframe>`, src)
	})
	parent.HandleFunc("GET /bounce", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.app+"/show?name="+r.URL.Query().Get("name"), http.StatusFound)
	})
	parent.HandleFunc("GET /inner", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><p data-testid="inner">same-site frame</p><button id="b" onclick="this.textContent='done'">go</button>`)
	})
	s.parent = "http://127.0.0.1:" + mustServe(t, parent)
	return s
}

// embed returns the parent page that frames src.
func (s sites) embed(src string) string {
	return s.parent + "/?src=" + url.QueryEscape(src)
}

func mustNavigate(t *testing.T, tab *Tab, u string) {
	t.Helper()
	if err := tab.Navigate(u); err != nil {
		t.Fatalf("navigate: %v", err)
	}
}

func mustWaitText(t *testing.T, tab *Tab, frameSel, cssSel, substr string) {
	t.Helper()
	if err := tab.WaitText(frameSel, cssSel, substr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

const frame = `[data-testid="app-frame"]`

func TestCrossSiteFramePartitionedCookie(t *testing.T) {
	start := time.Now()
	s := mustSites(t)
	b := NewBrowser(t)
	tab := b.NewTab(t)
	t.Logf("browser up after %v", time.Since(start))

	mustNavigate(t, tab, s.embed(s.app+"/set?name=t&partitioned=1"))
	mustWaitText(t, tab, frame, `[data-testid="got"]`, "yes")
	t.Logf("frame shows the cookie after %v", time.Since(start))

	t.Run("frame is out of process", func(t *testing.T) {
		tab.st.mu.Lock()
		defer tab.st.mu.Unlock()
		kinds := map[string]int{}
		for _, s := range tab.st.sessions {
			kinds[s.kind]++
		}
		if kinds["iframe"] != 1 {
			t.Errorf("sessions by kind = %v, want one iframe session", kinds)
		}
	})

	t.Run("read", func(t *testing.T) {
		if got, err := tab.FrameURL(frame); err != nil || got != s.app+"/show?name=t" {
			t.Errorf("FrameURL = %q, %v; want %q", got, err, s.app+"/show?name=t")
		}
		if got, err := tab.FrameURL(""); err != nil || !strings.HasPrefix(got, s.parent+"/") {
			t.Errorf("top URL = %q, %v; want the parent", got, err)
		}
		if got, err := tab.Text("", `[data-testid="ehr"]`); err != nil || got != "EHR" {
			t.Errorf("top Text = %q, %v; want EHR", got, err)
		}
		if n, err := tab.Count(frame, "li.item"); err != nil || n != 3 {
			t.Errorf("Count(li.item) = %d, %v; want 3", n, err)
		}
		if n, err := tab.Count("", "li.item"); err != nil || n != 0 {
			t.Errorf("Count in top = %d, %v; want 0 (items are only in the frame)", n, err)
		}
		html, err := tab.HTML(frame)
		if err != nil || !strings.Contains(html, `data-testid="clicked"`) {
			t.Errorf("HTML(frame) = %.80q, %v; want the app page", html, err)
		}
		if _, err := tab.Text(frame, "#missing"); err == nil {
			t.Error("Text of a missing element: no error")
		}
		if _, err := tab.Text(`[data-testid="nope"]`, "p"); err == nil {
			t.Error("Text in a missing frame: no error")
		}
	})

	t.Run("eval and storage", func(t *testing.T) {
		var origin string
		if err := tab.Eval(frame, "window.appReady ? location.origin : 'not ready'", &origin); err != nil || origin != s.app {
			t.Errorf("Eval origin = %q, %v; want %q", origin, err, s.app)
		}
		var sum int
		if err := tab.Eval(frame, "new Promise(r => setTimeout(() => r(40 + 2), 10))", &sum); err != nil || sum != 42 {
			t.Errorf("Eval promise = %d, %v; want 42", sum, err)
		}
		if err := tab.Eval(frame, "throw new Error('boom')", nil); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("Eval throw: err = %v, want boom", err)
		}
		st, err := tab.Storage(frame)
		if err != nil || st["local:k"] != "local-v" || st["session:s"] != "session-v" {
			t.Errorf("Storage(frame) = %v, %v", st, err)
		}
		top, err := tab.Storage("")
		if err != nil || len(top) != 0 {
			t.Errorf("Storage(top) = %v, %v; want empty (other origin)", top, err)
		}
	})

	t.Run("click", func(t *testing.T) {
		// A short viewport puts the button below the fold of the page, so the
		// click must scroll the page as well as the frame.
		if err := tab.SetViewport(800, 250); err != nil {
			t.Fatal(err)
		}
		if err := tab.Click(frame, `[data-testid="btn"]`); err != nil {
			t.Fatal(err)
		}
		mustWaitText(t, tab, frame, `[data-testid="clicked"]`, "clicked (trusted)")
		if err := tab.Click(frame, "#missing"); err == nil {
			t.Error("Click on a missing element: no error")
		}
		if err := tab.Click(frame, `[data-testid="covered"]`); err == nil || !strings.Contains(err.Error(), "covered") {
			t.Errorf("Click on a covered element: err = %v, want covered", err)
		}
	})

	t.Run("cookies", func(t *testing.T) {
		cookies, err := tab.Cookies()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, c := range cookies {
			if c.Name != "__Host-t" {
				continue
			}
			found = true
			if c.PartitionKey == nil || c.PartitionKey.TopLevelSite != "http://127.0.0.1" {
				t.Errorf("__Host-t partition key = %+v, want top-level site http://127.0.0.1", c.PartitionKey)
			}
			if !c.Secure || !c.HTTPOnly || c.Domain != "localhost" {
				t.Errorf("__Host-t = %+v, want Secure, HttpOnly, host localhost", c)
			}
		}
		if !found {
			t.Errorf("no __Host-t cookie in %d cookies", len(cookies))
		}
	})

	t.Run("responses", func(t *testing.T) {
		mustWaitText(t, tab, frame, `[data-testid="data"]`, "loaded")
		rs := tab.Responses()
		find := func(prefix string) *Response {
			for i := range rs {
				if strings.HasPrefix(rs[i].URL, prefix) {
					return &rs[i]
				}
			}
			return nil
		}
		for _, tc := range []struct {
			url        string
			wantStatus int
			wantBody   string
			wantHeader string // a header of the raw response
		}{
			{s.parent + "/?", 200, `data-testid="app-frame"`, ""},
			{s.app + "/set?", 303, "", "Set-Cookie"},
			{s.parent + "/bounce?", 302, "", "Location"},
			{s.app + "/show?", 200, `<p data-testid="got">yes</p>`, ""},
			{s.app + "/app.js", 200, "app-script-marker", ""},
			{s.app + "/data.json", 200, `{"ok":true}`, "Content-Type"},
		} {
			r := find(tc.url)
			if r == nil {
				t.Errorf("no response for %s", tc.url)
				continue
			}
			if r.Status != tc.wantStatus || !strings.Contains(r.Body, tc.wantBody) {
				t.Errorf("%s: status %d, body %.60q (err %q); want %d with %q", tc.url, r.Status, r.Body, r.BodyErr, tc.wantStatus, tc.wantBody)
			}
			if tc.wantHeader != "" && r.RawHeaders.Get(tc.wantHeader) == "" && r.Headers.Get(tc.wantHeader) == "" {
				t.Errorf("%s: no %s header in %v / raw %v", tc.url, tc.wantHeader, r.Headers, r.RawHeaders)
			}
		}
		urls := strings.Join(tab.RequestURLs(), "\n")
		for _, want := range []string{"/set?name=t", "/bounce?name=t", "/show?name=t", "/app.js", "/data.json"} {
			if !strings.Contains(urls, want) {
				t.Errorf("RequestURLs lacks %s:\n%s", want, urls)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		if err := tab.SetViewport(1024, 700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "shot.png")
		if dir := os.Getenv("E2E_SHOT_DIR"); dir != "" {
			path = filepath.Join(dir, "shot.png")
		}
		if err := tab.Screenshot(path); err != nil {
			t.Fatal(err)
		}
		buf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(buf))
		if err != nil || cfg.Width != 1024 || cfg.Height != 700 {
			t.Errorf("screenshot %d bytes: %dx%d, %v; want a 1024x700 PNG", len(buf), cfg.Width, cfg.Height, err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		if err := tab.Reload(); err != nil {
			t.Fatal(err)
		}
		// The parent reloads the frame's src, /set, which sets the cookie again.
		mustWaitText(t, tab, frame, `[data-testid="clicked"]`, "not yet")
		mustWaitText(t, tab, frame, `[data-testid="got"]`, "yes")
	})
	t.Logf("done after %v", time.Since(start))
}

func TestCrossSiteFrameBlocksThirdPartyCookie(t *testing.T) {
	s := mustSites(t)
	b := NewBrowser(t)
	tab := b.NewTab(t)

	// Without Partitioned, the cookie is a third-party cookie in the frame,
	// and Chromium blocks it, as browsers do for a real user.
	mustNavigate(t, tab, s.embed(s.app+"/set?name=u"))
	mustWaitText(t, tab, frame, `[data-testid="got"]`, "no")
	var set *Response
	for _, r := range tab.Responses() {
		if strings.HasPrefix(r.URL, s.app+"/set?") {
			set = &r
		}
	}
	if set == nil || !strings.Contains(set.RawHeaders.Get("Set-Cookie"), "__Host-u=v") {
		t.Fatalf("the /set response did not send the cookie: %+v", set)
	}
	cookies, err := tab.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "__Host-u" {
			t.Errorf("the blocked third-party cookie is in the jar: %+v", c)
		}
	}

	// The same cookie works first-party, so the "no" above is the blocking,
	// not a bad cookie.
	mustNavigate(t, tab, s.app+"/set?name=u")
	mustWaitText(t, tab, "", `[data-testid="got"]`, "yes")
	cookies, err = tab.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range cookies {
		if c.Name == "__Host-u" {
			found = true
			if c.PartitionKey != nil {
				t.Errorf("first-party cookie has partition key %+v", c.PartitionKey)
			}
		}
	}
	if !found {
		t.Error("no first-party __Host-u cookie")
	}
}

func TestTabsShareProfile(t *testing.T) {
	s := mustSites(t)
	b := NewBrowser(t)
	one := b.NewTab(t)
	mustNavigate(t, one, s.embed(s.app+"/set?name=t&partitioned=1"))
	mustWaitText(t, one, frame, `[data-testid="got"]`, "yes")

	two := b.NewTab(t)
	// The second tab embeds the app under the same top-level site, so it gets
	// the partitioned cookie from the shared jar...
	mustNavigate(t, two, s.embed(s.app+"/show?name=t"))
	mustWaitText(t, two, frame, `[data-testid="got"]`, "yes")
	// ...but not as a top-level page, where the partition differs.
	mustNavigate(t, two, s.app+"/show?name=t")
	mustWaitText(t, two, "", `[data-testid="got"]`, "no")

	// Each tab records only its own traffic.
	for _, r := range one.Responses() {
		if r.URL == s.app+"/show?name=t" && r.Status == 200 && strings.Contains(r.Body, ">no<") {
			t.Errorf("tab one has tab two's response %s", r.URL)
		}
	}
}

func TestFrameMovesBetweenProcesses(t *testing.T) {
	s := mustSites(t)
	b := NewBrowser(t)
	tab := b.NewTab(t)
	iframes := func() int {
		tab.st.mu.Lock()
		defer tab.st.mu.Unlock()
		n := 0
		for _, s := range tab.st.sessions {
			if s.kind == "iframe" {
				n++
			}
		}
		return n
	}

	mustNavigate(t, tab, s.embed(s.app+"/set?name=t&partitioned=1"))
	mustWaitText(t, tab, frame, `[data-testid="got"]`, "yes")
	if n := iframes(); n != 1 {
		t.Errorf("cross-site frame: %d iframe sessions, want 1", n)
	}

	// A link to the parent's host makes the frame same-site with the page, so
	// Chromium moves it into the page's process.
	if err := tab.Click(frame, `[data-testid="to-parent"]`); err != nil {
		t.Fatal(err)
	}
	mustWaitText(t, tab, frame, `[data-testid="inner"]`, "same-site frame")
	if n := iframes(); n != 0 {
		t.Errorf("same-site frame: %d iframe sessions, want 0", n)
	}
	if got, err := tab.FrameURL(frame); err != nil || got != s.parent+"/inner" {
		t.Errorf("FrameURL = %q, %v; want %q", got, err, s.parent+"/inner")
	}
	if err := tab.Click(frame, "#b"); err != nil {
		t.Fatal(err)
	}
	mustWaitText(t, tab, frame, "#b", "done")

	// And back to the app, in a new process.
	if err := tab.Eval(frame, "location.href = "+jsString(s.app+"/show?name=t")+"; true", nil); err != nil {
		t.Fatal(err)
	}
	mustWaitText(t, tab, frame, `[data-testid="got"]`, "yes")
	if n := iframes(); n != 1 {
		t.Errorf("back cross-site: %d iframe sessions, want 1", n)
	}

	var bodies []string
	for _, r := range tab.Responses() {
		if r.URL == s.parent+"/inner" || r.URL == s.app+"/show?name=t" {
			bodies = append(bodies, r.Body)
		}
	}
	if len(bodies) != 3 || !strings.Contains(bodies[1], "same-site frame") || !strings.Contains(bodies[2], ">yes<") {
		t.Errorf("show, inner, show bodies = %.60q", bodies)
	}
}

func TestBrowserClosesAllProcesses(t *testing.T) {
	s := mustSites(t)
	b := NewBrowser(t)
	tab := b.NewTab(t)
	mustNavigate(t, tab, s.embed(s.app+"/set?name=t&partitioned=1"))
	mustWaitText(t, tab, frame, `[data-testid="got"]`, "yes")
	if n := processesWith(t, b.DataDir()); n == 0 {
		t.Fatal("found no process of the running browser; the check below would prove nothing")
	}
	b.Close()
	if n := processesWith(t, b.DataDir()); n != 0 {
		t.Errorf("%d browser processes left after Close", n)
	}
}

// processesWith counts the live processes whose command line mentions dir.
func processesWith(t *testing.T, dir string) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		buf, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(buf, []byte(dir)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue // a zombie has exited
		}
		n++
	}
	return n
}

func TestCheckBrowser(t *testing.T) {
	present := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(present, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name               string
		path, env          string
		wantSkip, wantFail bool
	}{
		{"present", present, "", false, false},
		{"present and required", present, "1", false, false},
		{"missing", missing, "", true, false},
		{"missing and required", missing, "1", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skip, fail := checkBrowser(tc.path, func(k string) string {
				if k == RequireEnv {
					return tc.env
				}
				return ""
			})
			if (skip != "") != tc.wantSkip || (fail != "") != tc.wantFail {
				t.Errorf("checkBrowser = skip %q, fail %q; want skip %v, fail %v", skip, fail, tc.wantSkip, tc.wantFail)
			}
		})
	}
}
