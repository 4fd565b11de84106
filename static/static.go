// Package static embeds the built browser assets (static/dist) and serves them
// under content-hashed URLs, so browsers may cache them forever.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// dist holds the output of `npm run build`.
//
//go:embed dist
var dist embed.FS

// Prefix is the URL path under which Handler serves the assets.
const Prefix = "/static/"

// hashLen is the number of hex digits of the content hash in a URL.
const hashLen = 12

// defaultSet is built once from the embedded files; a broken embed is a build defect.
var defaultSet = mustNewAssetSet(dist, "dist")

// Path returns the content-hashed URL of an embedded asset, e.g.
// Path("app.js") == "/static/app.3f2a9c1b7d4e.js". It panics when name is not
// embedded, because that is a programming error a test catches at once.
func Path(name string) string {
	p, ok := defaultSet.path(name)
	if !ok {
		panic(fmt.Sprintf("static: no embedded asset %q", name))
	}
	return p
}

// Handler serves the embedded assets at the URLs Path returns. It accepts the
// request path with or without the /static/ prefix, so it can be mounted either way.
func Handler() http.Handler {
	return defaultSet
}

// asset is one embedded file, with its precomputed gzip form.
type asset struct {
	hashedName  string // e.g. "app.3f2a9c1b7d4e.js"
	contentType string
	body        []byte
	gz          []byte // nil when gzip would not make it smaller
}

// assetSet maps names and hashed names to assets.
type assetSet struct {
	byName   map[string]*asset // "app.js"
	byHashed map[string]*asset // "app.3f2a9c1b7d4e.js"
}

// mustNewAssetSet is newAssetSet for package initialisation.
func mustNewAssetSet(fsys fs.FS, root string) *assetSet {
	s, err := newAssetSet(fsys, root)
	if err != nil {
		panic("static: " + err.Error())
	}
	return s
}

// newAssetSet reads every file under root in fsys, hashes it and compresses it once.
func newAssetSet(fsys fs.FS, root string) (*assetSet, error) {
	s := &assetSet{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, root+"/")
		sum := sha256.Sum256(body)
		a := &asset{
			hashedName:  hashedName(name, hex.EncodeToString(sum[:])[:hashLen]),
			contentType: contentType(name),
			body:        body,
			gz:          gzipIfSmaller(body),
		}
		s.byName[name] = a
		s.byHashed[a.hashedName] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// path returns the URL of name.
func (s *assetSet) path(name string) (string, bool) {
	a, ok := s.byName[name]
	if !ok {
		return "", false
	}
	return Prefix + a.hashedName, true
}

// ServeHTTP serves one asset by its hashed name; anything else is a 404.
func (s *assetSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	// The body is never to be sniffed as another type (e.g. a CSS file run as script).
	h.Set("X-Content-Type-Options", "nosniff")
	name, found := strings.CutPrefix(r.URL.Path, Prefix)
	if !found {
		name = strings.TrimPrefix(r.URL.Path, "/")
	}
	a, ok := s.byHashed[name]
	if !ok {
		// An unknown or stale hash is a 404, never the current file: a cached page must
		// not get an asset it was not built with under an immutable URL.
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	// Other sites may not embed our assets.
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	body := a.body
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// hashedName puts hash before the extension: "app.js" -> "app.<hash>.js".
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// contentTypes is fixed here rather than read from the system's MIME tables, so
// the answer is the same on every machine.
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".map":   "application/json",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

// contentType returns the Content-Type of a file name.
func contentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// gzipIfSmaller compresses body at the best level, or returns nil when that saves nothing.
func gzipIfSmaller(body []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil
	}
	if _, err := zw.Write(body); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil {
		return nil
	}
	if buf.Len() >= len(body) {
		return nil
	}
	return buf.Bytes()
}

// acceptsGzip reports whether Accept-Encoding values allow gzip (q > 0), directly or via "*".
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil {
						f = 0
					}
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				starQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
