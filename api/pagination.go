package api

import (
	"context"
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

// listPage runs a List operation of the plain kind (maxResults and
// nextToken, nothing else): it validates the input, lists the page of
// the store through list with scope's signed tokens, and maps each item
// with wire. defaultLimit applies when maxResults is absent.
func listPage[T, W any](ctx context.Context, s *Server, body []byte, scope string, defaultLimit int,
	list func(ctx context.Context, page ivsrt.Page) ([]T, string, error), wire func(T) W) (items []W, nextToken string, err error) {
	var in listInput
	if err := decode(body, &in); err != nil {
		return nil, "", err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, "", err
	}
	limit := defaultLimit
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	got, next, err := list(ctx, ivsrt.Page{After: after, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	items = make([]W, 0, len(got))
	for _, x := range got {
		items = append(items, wire(x))
	}
	return items, s.pages.encode(scope, next), nil
}
