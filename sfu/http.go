package sfu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/clientinfo"
)

// Codes of refusals, in the JSON body of an HTTP error and in the error
// message of the events WebSocket. Those that are also event error codes
// of the API are recorded with PUBLISH_ERROR or SUBSCRIBE_ERROR.
const (
	codeTokenMissing         = "TOKEN_MISSING"
	codeTokenInvalid         = "TOKEN_INVALID"
	codeTokenExpired         = "TOKEN_EXPIRED"
	codeTokenRevoked         = "TOKEN_REVOKED"
	codeStageNotFound        = "STAGE_NOT_FOUND"
	codeNotFound             = "NOT_FOUND"
	codeSessionEnded         = "SESSION_ENDED"
	codeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	codeShuttingDown         = "SHUTTING_DOWN"
	codeUnavailable          = "UNAVAILABLE" // another node of the cluster could not be reached
	codeInvalidInput         = "INVALID_INPUT"
	codeInvalidAudioCodec    = "INVALID_AUDIO_CODEC"
	codeInvalidVideoCodec    = "INVALID_VIDEO_CODEC"
)

// maxSDPBytes bounds an SDP offer.
const maxSDPBytes = 64 << 10

// refusal is a request turned down, with what the client is told.
type refusal struct {
	status  int // HTTP status
	code    string
	message string
}

func (r *refusal) Error() string { return r.code + ": " + r.message }

var errInternal = &refusal{http.StatusInternalServerError, ivsrt.ErrInternalServer, "internal server error"}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeRefusal answers with ref. A refused token gets the challenge of
// RFC 6750, section 3.
func writeRefusal(w http.ResponseWriter, ref *refusal) {
	h := w.Header()
	if ref.status == http.StatusUnauthorized {
		if ref.code == codeTokenMissing {
			h.Set("WWW-Authenticate", `Bearer realm="ivsrt"`)
		} else {
			h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="ivsrt", error="invalid_token", error_description=%q`, ref.message))
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(ref.status)
	json.NewEncoder(w).Encode(errorBody{Code: ref.code, Message: ref.message})
}

// setCORS lets browser pages on any origin use WHIP and WHEP: requests
// carry a bearer token, never cookies.
func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Post, Accept-Patch")
}

// options answers a CORS preflight or an OPTIONS request (RFC 9725,
// section 4.2). One with a valid participant token gets the ICE servers
// too, so that a client can configure them before it makes its offer.
func (s *Server) options(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") == "" {
		w.Header().Set("Accept-Post", "application/sdp")
		if raw := ivsrt.PresentedToken(r.URL.Path, r.Header.Get("Authorization"), ""); raw != "" && s.iceServers != nil {
			if c, ref := s.verify(r.Context(), raw); ref == nil {
				s.setICELinks(w.Header(), c.tok)
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// iceServersOf returns the ICE servers of the participant of tok.
func (s *Server) iceServersOf(tok *ivsrt.ParticipantToken) []ivsrt.ICEServer {
	if s.iceServers == nil {
		return nil
	}
	return s.iceServers.ICEServers(tok.ParticipantID, tok.ExpirationTime)
}

// setICELinks adds the ICE servers of tok's participant as Link headers
// (RFC 9725, section 4.6), as OBS and other WHIP clients read them.
func (s *Server) setICELinks(h http.Header, tok *ivsrt.ParticipantToken) {
	for _, srv := range s.iceServersOf(tok) {
		for _, u := range srv.URLs {
			link := "<" + u + `>; rel="ice-server"`
			if srv.Username != "" {
				link += "; username=" + quoteLinkParam(srv.Username) + "; credential=" + quoteLinkParam(srv.Credential) +
					`; credential-type="password"`
			}
			h.Add("Link", link)
		}
	}
}

// quoteLinkParam quotes a Link parameter value (RFC 8288, a quoted-string).
func quoteLinkParam(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// readOffer reads the SDP offer of a WHIP or WHEP POST.
func readOffer(w http.ResponseWriter, r *http.Request) (string, *refusal) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/sdp" {
		return "", &refusal{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "the offer must be sent as application/sdp"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", &refusal{http.StatusRequestEntityTooLarge, codeInvalidInput, "the offer is too large"}
		}
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer could not be read"}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer is empty"}
	}
	return string(body), nil
}

// admitOffer does what a WHIP or WHEP POST starts with: read the SDP offer,
// verify the bearer token and lock the stage it names. On failure it has
// answered the request; on success the caller holds the stage's lock.
func (s *Server) admitOffer(w http.ResponseWriter, r *http.Request) (offer string, c claims, st *stage, ok bool) {
	offer, ref := readOffer(w, r)
	if ref == nil {
		c, ref = s.verify(r.Context(), ivsrt.PresentedToken(r.URL.Path, r.Header.Get("Authorization"), ""))
		c.client = clientinfo.Describe(r.Header, nil)
	}
	if ref == nil {
		st, ref = s.lockStage(c.tok.StageARN)
	}
	if ref != nil {
		writeRefusal(w, ref)
		return "", claims{}, nil, false
	}
	return offer, c, st, true
}

// newPeer creates the peer connection of a WHIP or WHEP session of st and
// hands it to attach with the stage locked. attach reports whether the
// session ended meanwhile (a disconnect raced the negotiation); then the
// connection is closed and errSessionEnded returned.
func (s *Server) newPeer(api *webrtc.API, st *stage, attach func(*webrtc.PeerConnection) (ended bool)) (*webrtc.PeerConnection, *refusal) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.logger.Error("create peer connection failed", "error", err)
		return nil, errInternal
	}
	st.lock()
	ended := attach(pc)
	st.unlock()
	if ended {
		pc.Close()
		return nil, errSessionEnded
	}
	return pc, nil
}

// verify checks a presented participant token's signature and expiry. An
// expired token is not refused here: a participant already in the stage
// may go on with it, which only the stage knows.
func (s *Server) verify(ctx context.Context, raw string) (claims, *refusal) {
	if raw == "" {
		return claims{}, &refusal{http.StatusUnauthorized, codeTokenMissing, "a participant token is required"}
	}
	tok, err := s.tokens.Verify(ctx, raw)
	if err == nil {
		return claims{tok: tok}, nil
	}
	if errors.Is(err, ivsrt.ErrTokenExpired) && tok != nil {
		return claims{tok: tok, expired: true}, nil
	}
	if ivsrt.ErrorCode(err) != ivsrt.EDENIED {
		s.logger.Error("verify token failed", "error", err)
		return claims{}, errInternal
	}
	return claims{}, &refusal{http.StatusUnauthorized, codeTokenInvalid, ivsrt.ErrorMessage(err)}
}
