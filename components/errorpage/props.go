// Package errorpage renders the plain-words error page and fragment.
package errorpage

import "smartlabs/components/layout"

// Props is the view model of an error page.
type Props struct {
	// Status is the HTTP status code, shown small for support staff.
	Status int
	// Title is a short headline, e.g. "This sign-in has expired or was already used".
	Title string
	// Message says in plain words what happened and what to do next.
	Message string
	// RequestID lets support find the log line; shown as "ref <id>".
	RequestID string
	// Actions are links or buttons offered to the user (e.g. "Open in a new window").
	Actions []Action
	// ID, when set, is the id of the fragment's root element, so that an HTMX swap
	// target (e.g. "labs") still exists after an error fragment replaced it.
	ID string
	// Layout is the page shell used by Page (asset paths, theme); its Title defaults
	// to Title, and empty asset paths default to the embedded build.
	Layout layout.Props
}

// Action is one thing the user can do from an error page.
type Action struct {
	Label string
	// Href is a same-origin URL built by the server, never data from FHIR.
	Href string
	// NewWindow opens Href in a new top-level window (target=_blank, rel=noopener).
	NewWindow bool
}
