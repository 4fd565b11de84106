package server_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// xss is put into every parameter a hostile request can carry; its opening
// tag must never come back unescaped.
const (
	xss       = `<script>hostile()</script>`
	xssMarker = `<script>hostile`
	// injected names a header or cookie a CRLF injection would create.
	injected = "hostileinjected"
)

// goErrorText are fragments of Go panics, stack traces and raw error strings
// that must never reach a browser.
var goErrorText = []string{
	"goroutine ", "panic", "runtime error", "runtime/", ".go:", "nil pointer",
	"invalid memory address", "net/http:", "echo:", "strconv.", "json: ", "invalid character",
	"unexpected EOF", "dial tcp", "context deadline exceeded", "context canceled", "%!", "<nil>",
	"redis:", "gob:", "cipher:", "x509:", "tls:", "crypto/",
}

// hostileRequest is one request sent raw over TCP to the app, so malformed
// request lines, headers and paths reach the real server and router as sent.
type hostileRequest struct {
	name   string
	method string // "GET" when empty
	target string // the request-target exactly as sent on the wire
	header [][2]string
	body   string
	// raw, when set, is the whole request as sent; method, target, header and body are unused.
	raw string
	// session adds a fresh browser session cookie, so the request reaches past the cookie check.
	session bool
	// known marks an iss that is configured: only then may the EHR be asked anything.
	known bool
	// want is the exact status expected; 0 means any 4xx.
	want int
	// check makes further assertions on the response.
	check func(t *testing.T, r *http.Response, body string)
}

// hostileResult is what one hostile request got back.
type hostileResult struct {
	resp *http.Response
	body string
}

// sendRaw writes raw to the app's listener and reads one response. Writing
// runs beside reading, so a server that answers before reading everything
// (431) is still heard.
func sendRaw(addr, raw string) (hostileResult, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return hostileResult{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	go func() { io.WriteString(conn, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return hostileResult{}, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return hostileResult{}, err
	}
	return hostileResult{resp: resp, body: string(b)}, nil
}

// randomToken is a well-formed but never issued session token.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestHostileRequests sends a table of hostile requests to the real server
// and router: malformed, oversized and duplicated parameters, path
// traversal, bad methods, oversized and forged cookies and headers,
// cross-site HTMX and logout requests, spoofed forwarding headers, look-alike
// issuers, script in every parameter and CRLF injection. Each must get a
// status below 500 (a 4xx unless said otherwise), no Go error text, no
// reflected script, no injected header, no redirect off-site, and no request
// to the EHR unless its iss is the configured one.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	appURL, _ := url.Parse(h.AppURL)
	addr := "127.0.0.1:" + appURL.Port()
	host := appURL.Host
	simISS := h.Sim.ISS()
	sim, _ := url.Parse(simISS)
	simPort := sim.Port()

	// A real launch, so hostile requests can aim at a live launch id and cookie.
	b := newBrowser(t)
	resp, _ := mustLaunch(t, h, b, h.Patient("Lin"))
	labsURL := resp.Request.URL.String()
	live := resp.Request.URL.Path // /l/<id>
	liveCookie := sessionCookie(t, b, appURL)
	forged := randomToken()

	// freshSession mints a new browser session cookie, as a first visit does.
	freshSession := func(t *testing.T) string {
		t.Helper()
		r, err := sendRaw(addr, "GET /launch?iss="+url.QueryEscape(simISS)+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.resp.Cookies() {
			if c.Name == "__Host-smartlabs" && c.Value != "" {
				return c.Name + "=" + c.Value
			}
		}
		t.Fatalf("no session cookie minted (status %d)", r.resp.StatusCode)
		return ""
	}

	q := url.QueryEscape
	launchQ := func(iss string) string { return "/launch?iss=" + q(iss) + "&launch=abc" }
	hostileISS := []struct{ name, iss string }{
		{"javascript: iss", "javascript:alert(1)"},
		{"data: iss", "data:text/html," + xss},
		{"non-URL iss", "not a url at all"},
		{"script iss", xss},
		{"protocol-relative iss", "//evil.example/fhir/R4"},
		{"backslash iss", `/\evil.example/fhir/R4`},
		{"unicode look-alike host", "http://127.0.0.１:" + simPort + "/fhir/R4"},
		{"cyrillic IDN host", "https://ерiс.example/fhir/R4"},
		{"punycode IDN host", "https://xn--ric-qdd.example/fhir/R4"},
		{"userinfo before the issuer host", "http://evil@127.0.0.1:" + simPort + "/fhir/R4"},
		{"issuer host as userinfo", "http://127.0.0.1:" + simPort + "@evil.example/fhir/R4"},
		{"other port", "http://127.0.0.1:1" + simPort + "/fhir/R4"},
		{"no port", "http://127.0.0.1/fhir/R4"},
		{"trailing dot host", "http://127.0.0.1.:" + simPort + "/fhir/R4"},
		{"https for an http issuer", "https://127.0.0.1:" + simPort + "/fhir/R4"},
		{"encoded slash in path", "http://127.0.0.1:" + simPort + "/fhir%2FR4"},
		{"dot-dot in path", simISS + "/../R4"},
		{"path prefix only", "http://127.0.0.1:" + simPort + "/fhir"},
		{"path extended", simISS + "x"},
		{"query on iss", simISS + "?x=1"},
		{"fragment on iss", simISS + "#x"},
		{"leading space", " " + simISS},
		{"NUL in iss", simISS + "\x00"},
		{"CRLF in iss", simISS + "\r\nSet-Cookie: " + injected + "=1"},
		{"look-alike host", "http://127.0.0.1.evil.example:" + simPort + "/fhir/R4"},
	}

	tests := []hostileRequest{
		// /launch: missing, duplicated and oversized parameters.
		{name: "launch without parameters", target: "/launch", session: true, want: 400},
		{name: "launch with empty iss", target: "/launch?iss=&launch=x", session: true, want: 400},
		{name: "launch with two iss", target: "/launch?iss=" + q(simISS) + "&iss=" + q("https://evil.example/"), session: true, want: 400},
		{name: "launch with two launch tokens", target: "/launch?iss=" + q(simISS) + "&launch=a&launch=b", session: true, want: 400},
		{name: "launch with huge iss", target: "/launch?iss=" + q(simISS+strings.Repeat("A", 20000)), session: true, want: 400},
		{name: "launch with huge launch token", target: "/launch?iss=" + q(simISS) + "&launch=" + strings.Repeat("B", 20000), session: true, want: 400},
		{name: "launch with 5000 parameters", target: "/launch?" + strings.Repeat("a=1&", 5000) + "iss=" + q("https://evil.example/"), session: true, want: 400},
		{name: "launch with malformed escapes", target: "/launch?iss=%zz%&launch=%", session: true, want: 400},
		{name: "launch with semicolon separators", target: "/launch?iss=" + q("https://evil.example/") + ";iss=" + q(simISS), session: true, want: 400},
		{name: "launch with script launch token", target: "/launch?iss=" + q(simISS) + "&launch=" + q(xss), session: true, known: true, want: 302,
			check: func(t *testing.T, r *http.Response, _ string) {
				u, err := url.Parse(r.Header.Get("Location"))
				if err != nil || u.Host != sim.Host {
					t.Errorf("Location %q, want the configured authorization server", r.Header.Get("Location"))
				}
			}},
		{name: "launch with script in an extra parameter", target: "/launch?iss=" + q("https://evil.example/") + "&x=" + q(xss), session: true, want: 400},
		{name: "launch with CRLF in launch token", target: "/launch?iss=" + q("https://evil.example/") + "&launch=" + q("a\r\nSet-Cookie: "+injected+"=1"), session: true, want: 400},

		// /callback.
		{name: "callback without parameters", target: "/callback", session: true, want: 400},
		{name: "callback with two states", target: "/callback?state=a&state=b&code=c", session: true, want: 400},
		{name: "callback with huge state", target: "/callback?code=c&state=" + strings.Repeat("s", 20000), session: true, want: 400},
		{name: "callback with huge code", target: "/callback?state=s&code=" + strings.Repeat("c", 20000), session: true, want: 400},
		{name: "callback with script state and code", target: "/callback?state=" + q(xss) + "&code=" + q(xss), session: true, want: 400},
		{name: "callback with script error", target: "/callback?error=" + q(xss) + "&error_description=" + q(xss) + "&error_uri=" + q("javascript:alert(1)"), session: true},
		{name: "callback with script iss", target: "/callback?state=s&code=c&iss=" + q(xss), session: true, want: 400},
		{name: "callback with CRLF error", target: "/callback?error=" + q("x\r\nSet-Cookie: "+injected+"=1") + "&state=s", session: true},
		{name: "callback without a session", target: "/callback?state=s&code=c", want: 400},
		{name: "callback with a forged session", target: "/callback?state=s&code=c", header: [][2]string{{"Cookie", "__Host-smartlabs=" + forged}}, want: 400},

		// Paths under /l/ and elsewhere.
		{name: "dot-dot path", target: "/l/../../etc/passwd", want: 404},
		{name: "encoded dot-dot path", target: "/l/%2e%2e/%2e%2e/etc/passwd", want: 404},
		{name: "encoded slashes in launch id", target: "/l/..%2f..%2fetc%2fpasswd", want: 404},
		{name: "script launch id", target: "/l/" + q(xss), want: 404},
		{name: "huge launch id", target: "/l/" + strings.Repeat("A", 8000), want: 404},
		{name: "short launch id", target: "/l/AAAA", want: 404},
		{name: "NUL in launch id", target: "/l/AAAA%00AAAAAAAAAAAAAAAAA", want: 404},
		{name: "unicode launch id", target: "/l/" + q("ĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀ"), want: 404},
		{name: "CRLF in path", target: "/l/%0d%0aSet-Cookie:%20" + injected + "=1", want: 404},
		{name: "traversal in drill-down key", target: live + "/a/..%2f..%2f..%2fetc%2fpasswd", want: 404},
		{name: "script drill-down key", target: live + "/a/" + q(xss), header: [][2]string{{"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 404},
		{name: "static traversal", target: "/static/../go.mod", want: 404},
		{name: "encoded static traversal", target: "/static/%2e%2e/%2e%2e/go.mod", want: 404},
		{name: "double slash open redirect", target: "//evil.example/%2e%2e", want: 404},
		{name: "backslash open redirect", target: `/\evil.example/`, want: 404},
		{name: "absolute-form request target", target: "http://evil.example/launch?iss=" + q("https://evil.example/"), session: true, want: 400},

		// Methods and bodies. Methods a route does not take fall to the not-found page.
		{name: "PUT launch", method: "PUT", target: "/launch?iss=" + q(xss), want: 404},
		{name: "DELETE view", method: "DELETE", target: live, header: [][2]string{{"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 404},
		{name: "TRACE", method: "TRACE", target: "/", want: 404},
		{name: "PROPFIND", method: "PROPFIND", target: "/launch", want: 404},
		{name: "CONNECT", method: "CONNECT", target: "evil.example:443", want: 404},
		{name: "invalid method token", method: "G@T", target: "/launch", want: 400},
		{name: "POST callback with form and script", method: "POST", target: "/callback", header: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}, {"Sec-Fetch-Site", "same-origin"}}, body: "state=" + q(xss) + "&code=" + q(xss), want: 404},
		{name: "POST launch with a large JSON body", method: "POST", target: "/launch", header: [][2]string{{"Content-Type", "application/json"}}, body: `{"iss":"` + strings.Repeat("x", 1<<20) + `"}`, want: 404},
		{name: "POST logout with XML body", method: "POST", target: live + "/logout", header: [][2]string{{"Content-Type", "text/xml"}}, body: "<x>" + xss + "</x>", want: 403},
		{name: "chunked and length together", raw: "POST /launch HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", want: 404},

		// Headers and cookies.
		{name: "header over the server limit", header: [][2]string{{"X-Big", strings.Repeat("h", 2<<20)}}, target: "/healthz", want: 431},
		{name: "64 KB header on a page", header: [][2]string{{"X-Big", strings.Repeat("h", 64<<10)}}, target: live, want: 404},
		{name: "oversized session cookie", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=" + strings.Repeat("c", 16<<10)}}, want: 404},
		{name: "300 cookies", target: "/launch?iss=" + q("https://evil.example/"), header: [][2]string{{"Cookie", strings.Repeat("a=b; ", 300) + "__Host-smartlabs=" + forged}}, want: 400},
		{name: "garbage session cookie", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=%%%garbage%%%"}}, want: 404},
		{name: "forged session cookie on a live launch", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=" + forged}}, want: 404},
		{name: "script in session cookie", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=" + q(xss)}}, want: 404},
		{name: "control byte in cookie", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=a\x01b"}}, want: 400},
		{name: "duplicate session cookies, forged first", target: live, header: [][2]string{{"Cookie", "__Host-smartlabs=" + forged + "; __Host-smartlabs=" + liveCookie.Value}}, want: 404},
		{name: "script in Host header", target: "/launch?iss=" + q("https://evil.example/"), header: [][2]string{{"Host", xss}}, want: 400},
		{name: "foreign Host header", target: "/launch?iss=" + q(simISS), header: [][2]string{{"Host", "evil.example"}}, want: 303},
		{name: "missing Host header", raw: "GET /launch HTTP/1.1\r\nConnection: close\r\n\r\n", want: 400},
		{name: "header name with space", raw: "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nX Bad: 1\r\nConnection: close\r\n\r\n", want: 400},
		{name: "bare LF and CR in a header value", raw: "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nX-A: a\rSet-Cookie: " + injected + "=1\r\nConnection: close\r\n\r\n", want: 400},
		{name: "CRLF in the request line", raw: "GET /launch?iss=a\r\nSet-Cookie: " + injected + "=1 HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n", want: 400},
		{name: "script in Accept-Language and User-Agent", target: "/launch?iss=" + q("https://evil.example/"), header: [][2]string{{"Accept-Language", xss}, {"User-Agent", xss}, {"Referer", "https://evil.example/" + xss}}, want: 400},

		// Forwarding headers change nothing without a trusted proxy.
		{name: "spoofed forwarding headers", target: "/launch?iss=" + q(simISS), session: true, known: true, want: 302,
			header: [][2]string{{"X-Forwarded-For", "10.0.0.1, " + xss}, {"X-Real-IP", "10.0.0.2"}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "https"}, {"Forwarded", "for=10.0.0.3;host=evil.example;proto=https"}},
			check: func(t *testing.T, r *http.Response, _ string) {
				u, err := url.Parse(r.Header.Get("Location"))
				if err != nil || u.Query().Get("redirect_uri") != h.Cfg.RedirectURI() {
					t.Errorf("redirect_uri in %q, want %q", r.Header.Get("Location"), h.Cfg.RedirectURI())
				}
			}},
		{name: "spoofed forwarding headers on an error page", target: "/launch?iss=" + q("https://evil.example/"), want: 400,
			header: [][2]string{{"X-Forwarded-For", xss}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "javascript"}}},

		// Cross-site and headerless HTMX and logout requests.
		{name: "cross-site HTMX fragment", target: live + "/labs", header: [][2]string{{"HX-Request", "true"}, {csrfHeader, csrfValue}, {"Sec-Fetch-Site", "cross-site"}, {"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 403},
		{name: "HTMX fragment without the CSRF header", target: live + "/labs", header: [][2]string{{"HX-Request", "true"}, {"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 403},
		{name: "HTMX with script header values", target: live + "/labs", header: [][2]string{{"HX-Request", xss}, {"HX-Current-URL", xss}, {"HX-Target", xss}, {csrfHeader, xss}}, want: 403},
		{name: "cross-site logout", method: "POST", target: live + "/logout", header: [][2]string{{csrfHeader, csrfValue}, {"Sec-Fetch-Site", "cross-site"}, {"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 403},
		{name: "logout from a foreign Origin", method: "POST", target: live + "/logout", header: [][2]string{{csrfHeader, csrfValue}, {"Origin", "https://evil.example"}, {"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 403},
		{name: "logout without the CSRF header", method: "POST", target: live + "/logout", header: [][2]string{{"Sec-Fetch-Site", "same-origin"}, {"Cookie", liveCookie.Name + "=" + liveCookie.Value}}, want: 403},
		{name: "logout with a forged session", method: "POST", target: live + "/logout", header: [][2]string{{csrfHeader, csrfValue}, {"Sec-Fetch-Site", "same-origin"}, {"Cookie", "__Host-smartlabs=" + forged}}, want: 404},
		{name: "logout of a script launch id", method: "POST", target: "/l/" + q(xss) + "/logout", header: [][2]string{{csrfHeader, csrfValue}, {"Sec-Fetch-Site", "same-origin"}}, want: 404},
		{name: "cross-site POST to the callback", method: "POST", target: "/callback?state=s&code=c", header: [][2]string{{"Sec-Fetch-Site", "cross-site"}}, want: 403},
		{name: "jwks with script query", target: "/.well-known/jwks.json?x=" + q(xss), want: 200},
		{name: "healthz with script query", target: "/healthz?x=" + q(xss), want: 200},
	}
	// Every hostile iss, at /launch with a session so a wrong match would reach discovery.
	for _, hi := range hostileISS {
		tests = append(tests, hostileRequest{name: "iss: " + hi.name, target: launchQ(hi.iss), session: true, want: 400})
	}

	handled := 0
	for _, tt := range tests {
		ok := t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" {
				var sb strings.Builder
				method := tt.method
				if method == "" {
					method = "GET"
				}
				fmt.Fprintf(&sb, "%s %s HTTP/1.1\r\n", method, tt.target)
				hasHost := false
				for _, kv := range tt.header {
					hasHost = hasHost || strings.EqualFold(kv[0], "Host")
				}
				if !hasHost {
					sb.WriteString("Host: " + host + "\r\n")
				}
				for _, kv := range tt.header {
					sb.WriteString(kv[0] + ": " + kv[1] + "\r\n")
				}
				if tt.session {
					sb.WriteString("Cookie: " + freshSession(t) + "\r\n")
				}
				if tt.body != "" {
					fmt.Fprintf(&sb, "Content-Length: %d\r\n", len(tt.body))
				}
				sb.WriteString("Connection: close\r\n\r\n" + tt.body)
				raw = sb.String()
			}
			h.Sim.ResetRequests()
			r, err := sendRaw(addr, raw)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			status := r.resp.StatusCode
			switch {
			case status >= 500:
				t.Errorf("status %d", status)
			case tt.want != 0 && status != tt.want:
				t.Errorf("status %d, want %d", status, tt.want)
			case tt.want == 0 && (status < 400 || status > 499):
				t.Errorf("status %d, want a 4xx", status)
			}
			for _, s := range goErrorText {
				if strings.Contains(r.body, s) {
					t.Errorf("body holds Go error text %q", s)
				}
			}
			if strings.Contains(strings.ToLower(r.body), xssMarker) {
				t.Error("body reflects the raw <script>")
			}
			for k, vs := range r.resp.Header {
				v := strings.ToLower(k + ": " + strings.Join(vs, ", "))
				if strings.Contains(v, injected) || strings.Contains(v, "<script") {
					t.Errorf("response header %s carries injected text", k)
				}
			}
			if loc := r.resp.Header.Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				if err != nil || (u.Host != "" && u.Host != host && u.Host != sim.Host) || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
					t.Errorf("redirect off-site: %q", loc)
				}
			}
			// An app page that refuses the request says why, in words.
			if status >= 400 && strings.HasPrefix(r.resp.Header.Get("Content-Type"), "text/html") {
				doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
				if err != nil || text(doc, "error-title") == "" {
					t.Errorf("%d page without an error title", status)
				}
			}
			if n := len(h.Sim.Requests()); !tt.known && n != 0 {
				t.Errorf("the EHR received %d requests, want 0", n)
			}
			if tt.check != nil {
				tt.check(t, r.resp, r.body)
			}
		})
		if ok {
			handled++
		}
	}
	t.Logf("hostile requests handled %d/%d", handled, len(tests))
	if len(tests) < 60 {
		t.Errorf("only %d hostile requests, want at least 60", len(tests))
	}
	if handled != len(tests) {
		t.Errorf("hostile requests handled %d/%d", handled, len(tests))
	}

	// Nothing hostile ended the live launch or the process, or reached the log.
	if r, _, _ := b.noRedirect().get(labsURL); r.StatusCode != http.StatusOK {
		t.Errorf("the live launch answers %d after the hostile requests", r.StatusCode)
	}
	if r, err := sendRaw(addr, "GET /healthz HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil || r.resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the hostile requests: %v", err)
	}
	logs := h.Logs.String()
	for _, s := range []string{"hostile()", injected, forged, liveCookie.Value} {
		if strings.Contains(logs, s) {
			t.Errorf("the application log holds %q", s)
		}
	}
	if bytes.Contains([]byte(h.Audit.String()), []byte("hostile()")) {
		t.Error("the audit log holds a hostile parameter")
	}
	// Every refusal is logged with a reason code an operator can count.
	if n := checkReasons(t, logs); n < 40 {
		t.Errorf("only %d refusals logged with a reason, want at least 40", n)
	}
}

// reasonRe is the shape of a logged reason code: fixed words, no request data.
var reasonRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// checkReasons asserts that every 4xx in logs carries a classified reason
// code and returns how many it saw.
func checkReasons(t *testing.T, logs string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var ev struct {
			Message string `json:"message"`
			Status  int    `json:"status"`
			Reason  string `json:"reason"`
			Route   string `json:"route"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Message != "request failed" || ev.Status < 400 || ev.Status > 499 {
			continue
		}
		n++
		if !reasonRe.MatchString(ev.Reason) || ev.Reason == "unclassified" || len(ev.Reason) > 64 {
			t.Errorf("%d at %s logged with reason %q", ev.Status, ev.Route, ev.Reason)
		}
	}
	return n
}
