// Package layout holds the page shell every full page is rendered in.
package layout

// Props is the view model of the page shell.
type Props struct {
	// Title is the document title (no patient data).
	Title string
	// CSSPath and JSPath are the URLs of the built, embedded assets.
	CSSPath string
	JSPath  string
	// ThemePath, when set, is a same-origin stylesheet with the EHR's style variables.
	ThemePath string
}
