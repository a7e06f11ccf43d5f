package api

import (
	"encoding/json"
	"net/http"

	"github.com/ivsrt/ivsrt"
)

// exceptions maps domain error codes to the AWS exception name and HTTP
// status a client expects. It is the only such table in the program.
var exceptions = map[string]struct {
	name   string
	status int
}{
	ivsrt.EINVALID:  {"ValidationException", http.StatusBadRequest},
	ivsrt.ENOTFOUND: {"ResourceNotFoundException", http.StatusNotFound},
	ivsrt.ECONFLICT: {"ConflictException", http.StatusConflict},
	ivsrt.EQUOTA:    {"ServiceQuotaExceededException", http.StatusPaymentRequired},
	ivsrt.EDENIED:   {"AccessDeniedException", http.StatusForbidden},
	ivsrt.EINTERNAL: {"InternalServerException", http.StatusInternalServerError},
}

// errorBody carries the message twice: the aws CLI prints "message", the Go
// SDK's typed errors read "exceptionMessage".
type errorBody struct {
	Message          string `json:"message"`
	ExceptionMessage string `json:"exceptionMessage"`
}

func writeException(w http.ResponseWriter, name string, status int, message string) {
	body, _ := json.Marshal(errorBody{Message: message, ExceptionMessage: message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", name)
	w.WriteHeader(status)
	w.Write(body)
}

// writeError answers with the AWS shape of err. Internal errors are logged
// and their details kept from the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := ivsrt.ErrorCode(err)
	if code == ivsrt.EINTERNAL {
		s.logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	e, ok := exceptions[code]
	if !ok {
		e = exceptions[ivsrt.EINTERNAL]
	}
	writeException(w, e.name, e.status, ivsrt.ErrorMessage(err))
}
