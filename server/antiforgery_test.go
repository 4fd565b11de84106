package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestAntiForgery: HTMX and state-changing routes need the custom header and a
// same-origin Sec-Fetch-Site; plain GET navigations stay open cross-site.
func TestAntiForgery(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const unknown = "/l/AAAAAAAAAAAAAAAAAAAAAA"
	htmx := map[string]string{"HX-Request": "true", csrfHeader: csrfValue}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
	}{
		// The labs fragment: HTMX only, custom header, same origin.
		{"fragment without HX-Request", "GET", unknown + "/labs", map[string]string{csrfHeader: csrfValue}, 400},
		{"fragment without custom header", "GET", unknown + "/labs", map[string]string{"HX-Request": "true"}, 403},
		{"fragment with wrong header value", "GET", unknown + "/labs", with(htmx, csrfHeader, "0"), 403},
		{"fragment cross-site", "GET", unknown + "/labs", with(htmx, "Sec-Fetch-Site", "cross-site"), 403},
		{"fragment same-site", "GET", unknown + "/labs", with(htmx, "Sec-Fetch-Site", "same-site"), 403},
		{"fragment user-typed", "GET", unknown + "/labs", with(htmx, "Sec-Fetch-Site", "none"), 403},
		{"fragment same-origin passes the guard", "GET", unknown + "/labs", with(htmx, "Sec-Fetch-Site", "same-origin"), 404},
		{"fragment without fetch metadata passes the guard", "GET", unknown + "/labs", htmx, 404},
		// Every other HTMX request on a session route is guarded too; plain navigations are not.
		{"HTMX view without custom header", "GET", unknown, map[string]string{"HX-Request": "true"}, 403},
		{"HTMX view cross-site", "GET", unknown, with(htmx, "Sec-Fetch-Site", "cross-site"), 403},
		{"HTMX view same-origin passes the guard", "GET", unknown, with(htmx, "Sec-Fetch-Site", "same-origin"), 404},
		{"HTMX drill-down without custom header", "GET", unknown + "/a/2345-7", map[string]string{"HX-Request": "true"}, 403},
		// Logout: state-changing.
		{"logout without custom header", "POST", unknown + "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"}, 403},
		{"logout cross-site", "POST", unknown + "/logout", map[string]string{csrfHeader: csrfValue, "Sec-Fetch-Site": "cross-site"}, 403},
		{"logout from a foreign Origin", "POST", unknown + "/logout", map[string]string{csrfHeader: csrfValue, "Origin": "https://evil.example"}, 403},
		{"logout same-origin passes the guard", "POST", unknown + "/logout", map[string]string{csrfHeader: csrfValue, "Sec-Fetch-Site": "same-origin"}, 404},
		{"logout by GET", "GET", unknown + "/logout", nil, 404},
		// Any unsafe method from another site is refused before routing matters.
		{"cross-site POST to launch", "POST", "/launch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site DELETE of a view", "DELETE", unknown, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin POST to launch", "POST", "/launch", map[string]string{"Sec-Fetch-Site": "same-origin"}, 404},
		// Navigations from the EHR and the authorization server stay allowed.
		{"cross-site launch navigation", "GET", "/launch?iss=" + url.QueryEscape("https://unknown.example/fhir"), map[string]string{"Sec-Fetch-Site": "cross-site"}, 400},
		{"cross-site callback navigation", "GET", "/callback?state=x&code=y", map[string]string{"Sec-Fetch-Site": "cross-site"}, 400},
		{"cross-site view navigation", "GET", unknown, map[string]string{"Sec-Fetch-Site": "cross-site"}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, h.AppURL+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.Handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			doc, err := goquery.NewDocumentFromReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantStatus == 403 && text(doc, "error-title") != "Request refused" {
				t.Errorf("403 page title %q", text(doc, "error-title"))
			}
		})
	}
}

// TestNoCORS: no route grants another origin access, preflight or not.
func TestNoCORS(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/l/AAAAAAAAAAAAAAAAAAAAAA/labs"},
		{"OPTIONS", "/l/AAAAAAAAAAAAAAAAAAAAAA/labs"},
		{"OPTIONS", "/l/AAAAAAAAAAAAAAAAAAAAAA/logout"},
		{"GET", "/launch"},
		{"GET", "/healthz"},
		{"GET", "/.well-known/jwks.json"},
	} {
		req := httptest.NewRequest(tc.method, h.AppURL+tc.path, nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", csrfHeader)
		rec := httptest.NewRecorder()
		h.Handler.ServeHTTP(rec, req)
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s %s: answered %s: %q", tc.method, tc.path, k, rec.Header().Get(k))
			}
		}
	}
}

// TestLogout: logout needs the anti-forgery header, deletes the launch,
// destroys the session so the old cookie names nothing, and clears site data.
func TestLogout(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	first, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	second, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	appURL, _ := url.Parse(h.AppURL)
	oldCookie := sessionCookie(t, b, appURL)

	post := func(header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, first.Request.URL.String()+"/logout", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// Read to its end, so the recorder keeps the page.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := post(map[string]string{"Sec-Fetch-Site": "same-origin"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the header: %d, want 403", r.StatusCode)
	}
	mustRows(t, h, b, first.Request.URL.String())

	r := post(map[string]string{csrfHeader: csrfValue, "Sec-Fetch-Site": "same-origin"})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("logout: status %d", r.StatusCode)
	}
	if got := r.Header.Get("Clear-Site-Data"); !strings.Contains(got, `"cache"`) || !strings.Contains(got, `"storage"`) {
		t.Errorf("Clear-Site-Data = %q", got)
	}
	if !expiresCookie(r) {
		t.Errorf("logout does not expire the session cookie: %q", r.Header.Values("Set-Cookie"))
	}
	ex := b.exchanges()
	if body := ex[len(ex)-1].Body; !strings.Contains(body, "You are signed out of smartlabs") {
		t.Errorf("logout page does not say signed out")
	}

	// Replaying the old cookie reaches neither launch of that browser.
	for _, u := range []string{first.Request.URL.String(), second.Request.URL.String()} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.AddCookie(oldCookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("old cookie after logout: %s answered %d, want 404", u, resp.StatusCode)
		}
	}
	for _, rec := range h.LaunchRecords() {
		if rec["id"] == strings.TrimPrefix(first.Request.URL.Path, "/l/") {
			t.Error("logged-out launch record still stored")
		}
	}
}

func TestLogoutHTMX(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	req, _ := http.NewRequest(http.MethodPost, resp.Request.URL.String()+"/logout", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set(csrfHeader, csrfValue)
	r, err := b.noRedirect().c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Header.Get("HX-Redirect") != "/signed-out" {
		t.Fatalf("HTMX logout: %d, HX-Redirect %q", r.StatusCode, r.Header.Get("HX-Redirect"))
	}
	page, doc, _ := b.get(h.AppURL + "/signed-out")
	if page.StatusCode != http.StatusOK || text(doc, "error-title") != "You are signed out of smartlabs" {
		t.Errorf("signed-out page: %d %q", page.StatusCode, text(doc, "error-title"))
	}
	if again, _, _ := b.noRedirect().get(resp.Request.URL.String()); again.StatusCode != http.StatusNotFound {
		t.Errorf("view after logout: %d, want 404", again.StatusCode)
	}
}

// sessionCookie returns the browser's current session cookie.
func sessionCookie(t *testing.T, b *browser, u *url.URL) *http.Cookie {
	t.Helper()
	ex := b.exchanges()
	for i := len(ex) - 1; i >= 0; i-- {
		resp := http.Response{Header: ex[i].Header}
		for _, c := range resp.Cookies() {
			if c.Name == "__Host-smartlabs" && c.Value != "" && c.MaxAge >= 0 {
				return &http.Cookie{Name: c.Name, Value: c.Value}
			}
		}
	}
	t.Fatalf("no session cookie was set for %s", u.Host)
	return nil
}

// expiresCookie reports whether r tells the browser to drop the session cookie.
func expiresCookie(r *http.Response) bool {
	for _, c := range r.Cookies() {
		if c.Name == "__Host-smartlabs" && (c.MaxAge < 0 || c.Value == "") {
			return true
		}
	}
	return false
}
