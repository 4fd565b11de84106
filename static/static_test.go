package static

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// mustAssetSet builds an asset set from in-memory files.
func mustAssetSet(t *testing.T, files map[string]string) *assetSet {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys["dist/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	s, err := newAssetSet(fsys, "dist")
	if err != nil {
		t.Fatalf("newAssetSet: %v", err)
	}
	return s
}

// mustPath returns the URL of name in s.
func mustPath(t *testing.T, s *assetSet, name string) string {
	t.Helper()
	p, ok := s.path(name)
	if !ok {
		t.Fatalf("no asset %q", name)
	}
	return p
}

// mustGunzip decompresses b.
func mustGunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

var hashedPath = regexp.MustCompile(`^/static/app\.[0-9a-f]{12}\.js$`)

func TestPathShape(t *testing.T) {
	for _, name := range []string{"app.js", "app.css"} {
		p := Path(name)
		if !strings.HasPrefix(p, "/static/") || strings.Count(p, ".") != 2 {
			t.Errorf("Path(%q) = %q, want /static/<base>.<hash>.<ext>", name, p)
		}
	}
	if p := Path("app.js"); !hashedPath.MatchString(p) {
		t.Errorf("Path(app.js) = %q, want match %v", p, hashedPath)
	}
}

func TestPathPanicsOnUnknown(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Path(nope.js) did not panic")
		}
	}()
	Path("nope.js")
}

func TestHashChangesWithContent(t *testing.T) {
	a := mustAssetSet(t, map[string]string{"app.js": "console.log(1)"})
	b := mustAssetSet(t, map[string]string{"app.js": "console.log(2)"})
	c := mustAssetSet(t, map[string]string{"app.js": "console.log(1)"})
	pa, pb, pc := mustPath(t, a, "app.js"), mustPath(t, b, "app.js"), mustPath(t, c, "app.js")
	if pa == pb {
		t.Errorf("different content, same path %q", pa)
	}
	if pa != pc {
		t.Errorf("same content, different paths %q and %q", pa, pc)
	}
	if !hashedPath.MatchString(pa) {
		t.Errorf("path %q does not match %v", pa, hashedPath)
	}
}

func TestHandler(t *testing.T) {
	js := strings.Repeat("function f(){return 1}\n", 200)
	css := strings.Repeat(".a{color:red}\n", 200)
	s := mustAssetSet(t, map[string]string{"app.js": js, "app.css": css, "img/x.png": "\x89PNG"})
	jsPath, cssPath, pngPath := mustPath(t, s, "app.js"), mustPath(t, s, "app.css"), mustPath(t, s, "img/x.png")
	stale := strings.Replace(jsPath, jsPath[len("/static/app."):len("/static/app.")+12], "000000000000", 1)

	tests := []struct {
		name           string
		method         string
		target         string
		acceptEncoding string
		wantStatus     int
		wantType       string
		wantEncoding   string
		wantBody       string
	}{
		{name: "js plain", method: "GET", target: jsPath, wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: js},
		{name: "css plain", method: "GET", target: cssPath, wantStatus: 200, wantType: "text/css; charset=utf-8", wantBody: css},
		{name: "nested png", method: "GET", target: pngPath, wantStatus: 200, wantType: "image/png", wantBody: "\x89PNG"},
		{name: "js gzip", method: "GET", target: jsPath, acceptEncoding: "gzip, deflate, br", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantEncoding: "gzip", wantBody: js},
		{name: "css gzip with q", method: "GET", target: cssPath, acceptEncoding: "br;q=1.0, gzip;q=0.8", wantStatus: 200, wantType: "text/css; charset=utf-8", wantEncoding: "gzip", wantBody: css},
		{name: "gzip refused", method: "GET", target: jsPath, acceptEncoding: "gzip;q=0, br", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: js},
		{name: "star allows gzip", method: "GET", target: jsPath, acceptEncoding: "*", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantEncoding: "gzip", wantBody: js},
		{name: "without prefix", method: "GET", target: strings.TrimPrefix(jsPath, "/static"), wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: js},
		{name: "head", method: "HEAD", target: jsPath, wantStatus: 200, wantType: "text/javascript; charset=utf-8"},
		{name: "stale hash", method: "GET", target: stale, wantStatus: 404},
		{name: "unhashed name", method: "GET", target: "/static/app.js", wantStatus: 404},
		{name: "unknown file", method: "GET", target: "/static/other.000000000000.js", wantStatus: 404},
		{name: "directory", method: "GET", target: "/static/", wantStatus: 404},
		{name: "post", method: "POST", target: jsPath, wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tt.acceptEncoding)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if tt.wantStatus != 200 {
				if got := res.Header.Get("Cache-Control"); strings.Contains(got, "immutable") {
					t.Errorf("error answer has Cache-Control %q", got)
				}
				return
			}
			if got := res.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := res.Header.Get("Content-Encoding"); got != tt.wantEncoding {
				t.Errorf("Content-Encoding = %q, want %q", got, tt.wantEncoding)
			}
			body := rec.Body.Bytes()
			if got := res.Header.Get("Content-Length"); tt.method == "GET" && got != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length = %q, body is %d bytes", got, len(body))
			}
			if tt.wantEncoding == "gzip" {
				if len(body) >= len(tt.wantBody) {
					t.Errorf("gzip body %d bytes is not smaller than %d", len(body), len(tt.wantBody))
				}
				body = mustGunzip(t, body)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body = %.40q..., want %.40q...", body, tt.wantBody)
			}
		})
	}
}

func TestVaryOnlyWhenCompressible(t *testing.T) {
	s := mustAssetSet(t, map[string]string{"big.js": strings.Repeat("a", 1000), "tiny.js": "a"})
	for name, wantVary := range map[string]string{"big.js": "Accept-Encoding", "tiny.js": ""} {
		req := httptest.NewRequest("GET", mustPath(t, s, name), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if got := rec.Header().Get("Vary"); got != wantVary {
			t.Errorf("%s: Vary = %q, want %q", name, got, wantVary)
		}
		if name == "tiny.js" && rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("tiny.js served compressed although gzip is larger")
		}
	}
}

func TestEmbeddedHandlerServesBuiltAssets(t *testing.T) {
	for _, tt := range []struct{ name, wantType, wantSubstr string }{
		{"app.js", "text/javascript; charset=utf-8", "htmx"},
		{"app.css", "text/css; charset=utf-8", ".htmx-indicator"},
	} {
		req := httptest.NewRequest("GET", Path(tt.name), nil)
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", tt.name, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != tt.wantType {
			t.Errorf("%s: Content-Type = %q, want %q", tt.name, got, tt.wantType)
		}
		if !strings.Contains(rec.Body.String(), tt.wantSubstr) {
			t.Errorf("%s: body lacks %q", tt.name, tt.wantSubstr)
		}
	}
}
