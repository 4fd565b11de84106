// Package authpost renders the page that sends an authorization request as a
// form POST, which Epic recommends for EHR launches with long launch tokens.
package authpost

// Props is the view model of the form-POST authorization page.
type Props struct {
	// Action is the authorization endpoint from the issuer's discovery document.
	Action string
	// Fields are the authorization request parameters.
	Fields []Field
}

// Field is one hidden form field.
type Field struct {
	Name, Value string
}
