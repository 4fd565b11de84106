// Package layout holds the page shell every full page is rendered in.
package layout

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Props is the view model of the page shell.
type Props struct {
	// Title is the document title (no patient data).
	Title string
	// CSSPath and JSPath are the URLs of the built, embedded assets.
	CSSPath string
	JSPath  string
	// ThemePath, when set, is a same-origin stylesheet with the EHR's style variables.
	ThemePath string
	// ThemeCSS, when set, is the EHR's style variables themselves, written
	// into the head in place of ThemePath: no request holds back the first
	// paint. The page's Content-Security-Policy must allow StyleHash(ThemeCSS).
	// A stylesheet that could end its <style> element is never inlined
	// (CanInline): ThemePath is linked instead.
	ThemeCSS string
}

// CanInline reports whether css may be written inside a <style> element:
// it holds no '<', so nothing in it can close the element.
func CanInline(css string) bool { return css != "" && !strings.Contains(css, "<") }

// StyleHash is the CSP source that allows exactly the inline stylesheet css
// (and no other inline style): 'sha256-' and its digest in base64.
func StyleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
