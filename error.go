package ivsrt

import (
	"errors"
	"fmt"
)

// Error codes. The api package alone maps them to AWS exception names and
// HTTP statuses; everything else speaks only these.
const (
	ECONFLICT = "conflict"  // the request conflicts with the current state
	EINTERNAL = "internal"  // a fault of the server, never of the caller
	EINVALID  = "invalid"   // the input breaks a documented constraint
	ENOTFOUND = "not_found" // the named resource does not exist
	EQUOTA    = "quota"     // a configured limit would be exceeded
	EDENIED   = "denied"    // the caller may not do this
)

// Error is the one error type that crosses package boundaries with a
// meaning the caller can act on. Its Message is safe to show to clients.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ivsrt error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err. Internal errors get a
// generic text so that nothing about the server's insides leaks to callers.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error."
}
