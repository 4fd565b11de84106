package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ErrorKind classifies a failed FHIR request.
type ErrorKind string

// Error kinds.
const (
	// KindUnauthorized means the EHR answered 401: the access token was not accepted.
	KindUnauthorized ErrorKind = "unauthorized"
	// KindForbidden means the EHR answered 403.
	KindForbidden ErrorKind = "forbidden"
	// KindNotFound means the EHR answered 404 or 410.
	KindNotFound ErrorKind = "not_found"
	// KindUpstream means the EHR answered 5xx or 429, could not be reached or redirected elsewhere.
	KindUpstream ErrorKind = "upstream"
	// KindTimeout means the EHR did not answer within the request timeout.
	KindTimeout ErrorKind = "timeout"
	// KindMalformed means the answer was not readable FHIR: bad or truncated JSON,
	// an unexpected resourceType, an over-large body or a refused paging link.
	KindMalformed ErrorKind = "malformed"
	// KindWrongPatient means the EHR returned data about another patient.
	KindWrongPatient ErrorKind = "wrong_patient"
	// KindRequest means the EHR refused the request (other 4xx) or the request was invalid.
	KindRequest ErrorKind = "request"
)

// Error is a failed FHIR request. Its Error text never holds the access token,
// a URL with its query string or patient data, so it is safe to log.
type Error struct {
	// Kind classifies the failure.
	Kind ErrorKind
	// Status is the HTTP status the EHR answered, 0 when there was no answer.
	Status int
	// Public is plain words for a clinician, safe to show.
	Public string
	// Codes are the OperationOutcome issue codes sent with an error answer, if any.
	Codes []string
	// Err is the underlying cause, already stripped of URLs and data.
	Err error
	// Attempts is how many times the request was sent; more than 1 means it was retried.
	Attempts int

	// retryAfter is the answer's Retry-After header, as sent.
	retryAfter string
	// transient is true for a failure to reach the server that a retry may cure.
	transient bool
}

// Error describes the failure for logs.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fhir: ")
	b.WriteString(string(e.Kind))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if len(e.Codes) > 0 {
		fmt.Fprintf(&b, " codes=%s", strings.Join(e.Codes, ","))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a *Error anywhere in err's chain, or "" when there is none.
func KindOf(err error) ErrorKind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return ""
}

// publicText is the clinician-facing text of each kind.
var publicText = map[ErrorKind]string{
	KindUnauthorized: "The EHR no longer accepts this app's access. Open the app again from the patient's chart.",
	KindForbidden:    "The EHR refused access to these results.",
	KindNotFound:     "The EHR could not find this record.",
	KindUpstream:     "The EHR had a problem answering. Try again in a moment.",
	KindTimeout:      "The EHR did not answer in time.",
	KindMalformed:    "The EHR sent an answer the app could not read.",
	KindWrongPatient: "The EHR returned data for a different patient, so nothing is shown. Open the app again from the patient's chart.",
	KindRequest:      "The EHR did not accept the request.",
}

// newError builds an *Error of kind with its public text.
func newError(kind ErrorKind, status int, err error) *Error {
	return &Error{Kind: kind, Status: status, Public: publicText[kind], Err: err}
}

// kindForStatus maps a non-2xx HTTP status to an error kind.
func kindForStatus(status int) ErrorKind {
	switch {
	case status == 401:
		return KindUnauthorized
	case status == 403:
		return KindForbidden
	case status == 404 || status == 410:
		return KindNotFound
	case status == 429:
		// Throttling is the server's state, not a fault of the request: like a 5xx, it may pass.
		return KindUpstream
	case status >= 500:
		return KindUpstream
	case status >= 400:
		return KindRequest
	default:
		// 1xx and 3xx are not answers we can use; treat them as a misbehaving server.
		return KindUpstream
	}
}

// errBodyTooLarge is returned by limitedReader when a body exceeds its limit.
var errBodyTooLarge = errors.New("response body exceeds the size limit")

// transportError classifies an error from sending a request or reading its body.
// The URL is dropped from *url.Error because its query string holds the patient id.
func transportError(ctx context.Context, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return newError(KindTimeout, 0, errors.New("request timed out"))
	case errors.Is(err, context.Canceled):
		return newError(KindTimeout, 0, errors.New("request cancelled"))
	case errors.As(err, &ne) && ne.Timeout():
		return newError(KindTimeout, 0, errors.New("request timed out"))
	case errors.Is(err, errRedirectRefused):
		return newError(KindUpstream, 0, errRedirectRefused)
	default:
		return newError(KindUpstream, 0, fmt.Errorf("request failed: %s", safeNetMessage(err)))
	}
}

// safeNetMessage names the class of a network error without echoing addresses or URLs.
func safeNetMessage(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "network error during " + oe.Op
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return "name resolution failed"
	}
	return fmt.Sprintf("%T", err)
}

// decodeError classifies an error from decoding a body. JSON error texts can echo
// values from the body (patient data), so only their type and offset are kept.
func decodeError(ctx context.Context, err error) *Error {
	var (
		se *jsontext.SyntacticError
		te *json.SemanticError
	)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return newError(KindMalformed, 0, errBodyTooLarge)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return newError(KindMalformed, 0, errors.New("truncated body"))
	case errors.As(err, &se):
		return newError(KindMalformed, 0, fmt.Errorf("invalid JSON at offset %d", se.ByteOffset))
	case errors.As(err, &te):
		// Only the Go type and the offset: the JSON pointer and value come from the body.
		return newError(KindMalformed, 0, fmt.Errorf("unexpected JSON value for a %s at offset %d", goTypeName(te), te.ByteOffset))
	default:
		// Read errors (timeouts, resets) while streaming the body.
		return transportError(ctx, err)
	}
}

// goTypeName names the Go type a semantic error was about, or "field".
func goTypeName(e *json.SemanticError) string {
	if e.GoType == nil {
		return "field"
	}
	return e.GoType.String()
}
