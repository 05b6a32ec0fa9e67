// Package errdefs holds the classes of error shared by every package.
// Wrap a class with fmt.Errorf("...: %w", errdefs.ErrNotFound) and test with
// errors.Is; the API server maps classes to HTTP status codes in one place.
package errdefs

import "errors"

var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object exists already, or is in a state that forbids
	// the operation.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the caller's input is malformed or not supported.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the host lacks what the operation needs, or a service
	// it depends on (a registry) cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: a service refused the caller's credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the operation is never allowed on this object (a
	// predefined network cannot be removed).
	ErrForbidden = errors.New("forbidden")
)

// Invalid reports whether err is of class ErrInvalid.
func Invalid(err error) bool { return errors.Is(err, ErrInvalid) }

// NotFound reports whether err is of class ErrNotFound.
func NotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Conflict reports whether err is of class ErrConflict.
func Conflict(err error) bool { return errors.Is(err, ErrConflict) }

// ErrNotModified: the object is already in the requested state (docker
// answers 304, e.g. starting a running container).
var ErrNotModified = errors.New("not modified")

// Classes lists every class, for code that must treat each.
var Classes = []error{ErrNotFound, ErrConflict, ErrInvalid, ErrUnavailable, ErrUnauthorized, ErrForbidden, ErrNotModified}

// classed is an error whose text is given whole (docker's own wording)
// and whose class is tested with errors.Is.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string        { return e.msg }
func (e *classed) Is(target error) bool { return target == e.class }

// New returns an error of class reading exactly msg.
func New(class error, msg string) error { return &classed{msg: msg, class: class} }
