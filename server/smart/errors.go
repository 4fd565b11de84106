package smart

import "fmt"

// ErrorKind tells the server which error page fits a failure, without string matching.
type ErrorKind int

const (
	// KindUnreachable is a network error, a timeout or an upstream 5xx (the app shows 502).
	KindUnreachable ErrorKind = iota + 1
	// KindBadServer is a malformed discovery document or JWKS, PKCE "plain" only,
	// or an id_token whose signature does not verify (502).
	KindBadServer
	// KindRejected is the token endpoint refusing the request (invalid_grant,
	// invalid_client, any 4xx) or an id_token that does not belong to this sign-in (400).
	KindRejected
	// KindIssuerMismatch is an authorization response or id_token naming another issuer (400).
	KindIssuerMismatch
)

// String names the kind for logs.
func (k ErrorKind) String() string {
	switch k {
	case KindUnreachable:
		return "unreachable"
	case KindBadServer:
		return "bad_server"
	case KindRejected:
		return "rejected"
	case KindIssuerMismatch:
		return "issuer_mismatch"
	default:
		return fmt.Sprintf("ErrorKind(%d)", int(k))
	}
}

// Error is a SMART failure with plain words for a clinician.
// Neither Public nor Err ever holds a token, code or secret.
type Error struct {
	// Kind selects the page and status.
	Kind ErrorKind
	// Public is safe to show a clinician.
	Public string
	// Err is the cause, for logs.
	Err error
}

// Error returns the kind, the public text and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return "smart: " + e.Kind.String() + ": " + e.Public
	}
	return "smart: " + e.Kind.String() + ": " + e.Public + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Public texts, kept together so the wording stays consistent.
const (
	publicUnreachable = "The EHR's sign-in service could not be reached. Please try again in a moment."
	publicBadServer   = "The EHR's sign-in service answered in a way this app cannot use. Please contact support."
	publicPKCE        = "The EHR's sign-in service does not support secure sign-in (PKCE S256). Please contact support."
	publicRejected    = "Sign-in could not be completed. Please launch the app again from the EHR."
	publicIssuer      = "The sign-in response came from an unexpected server, so it was refused. Please launch the app again."
	publicIDToken     = "The EHR's identity token could not be verified. Please contact support."
)

func errorf(kind ErrorKind, public, format string, args ...any) *Error {
	return &Error{Kind: kind, Public: public, Err: fmt.Errorf(format, args...)}
}
