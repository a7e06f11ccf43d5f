package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/ivsrt/ivsrt"
)

// pager turns a store's page position into an opaque nextToken and back.
// A token is bound by an HMAC to the list it came from (operation and
// parameters), so a forged, altered or misplaced one is rejected instead of
// silently listing the wrong thing.
type pager struct {
	key []byte
}

const pageTokenVersion = 1

func (p pager) mac(scope, after string) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte{pageTokenVersion})
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(after))
	return m.Sum(nil)[:16]
}

// encode returns the nextToken for position after of the list named by
// scope, or "" at the end of the list.
func (p pager) encode(scope, after string) string {
	if after == "" {
		return ""
	}
	buf := append([]byte{pageTokenVersion}, after...)
	buf = append(buf, p.mac(scope, after)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decode returns the position a nextToken names, checking it was made for
// this list by this server.
func (p pager) decode(scope, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	invalid := ivsrt.Errorf(ivsrt.EINVALID, "The nextToken is not valid: it is malformed, altered or from another request.")
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(buf) < 1+16+1 || buf[0] != pageTokenVersion {
		return "", invalid
	}
	after := string(buf[1 : len(buf)-16])
	if !hmac.Equal(buf[len(buf)-16:], p.mac(scope, after)) {
		return "", invalid
	}
	return after, nil
}
