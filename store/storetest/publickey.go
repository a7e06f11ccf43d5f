package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func newPublicKeyARN() ivsrt.PublicKeyARN {
	return ivsrt.NewPublicKeyARN("us-east-1", "123456789012", ivsrt.NewPublicKeyID())
}

// newFingerprint returns a fingerprint no other key of the test has. The
// store keeps what it is given: it neither parses the material nor
// computes the fingerprint.
func newFingerprint() string {
	b := make([]byte, 16)
	rand.Read(b)
	parts := make([]string, len(b))
	for i := range b {
		parts[i] = hex.EncodeToString(b[i : i+1])
	}
	return strings.Join(parts, ":")
}

// newPublicKey returns a public key with a fresh ARN and fingerprint.
func newPublicKey(name string, tags map[string]string) *ivsrt.PublicKey {
	fp := newFingerprint()
	return &ivsrt.PublicKey{ARN: newPublicKeyARN(), Name: name, Fingerprint: fp, Tags: tags,
		Material: "-----BEGIN PUBLIC KEY-----\r\n" + strings.ReplaceAll(fp, ":", "") + "\r\n-----END PUBLIC KEY-----\r\n"}
}

// importKey stores a public key with the given name and tags.
func (e *env) importKey(t *testing.T, name string, tags map[string]string) *ivsrt.PublicKey {
	t.Helper()
	pk := newPublicKey(name, tags)
	if err := e.s.ImportPublicKey(e.ctx, pk, ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey: %v", err)
	}
	return pk
}

func (e *env) getKey(t *testing.T, arn ivsrt.PublicKeyARN) *ivsrt.PublicKey {
	t.Helper()
	return fetch(t, e, "GetPublicKey", e.s.GetPublicKey, arn)
}

func checkKey(t *testing.T, what string, got, want *ivsrt.PublicKey) {
	t.Helper()
	if got.ARN != want.ARN || got.Name != want.Name || got.Material != want.Material || got.Fingerprint != want.Fingerprint {
		t.Errorf("%s: got %s %q %q %q, want %s %q %q %q", what,
			got.ARN, got.Name, got.Fingerprint, got.Material, want.ARN, want.Name, want.Fingerprint, want.Material)
	}
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	if got.Tags == nil {
		t.Errorf("%s: Tags: got nil, want a map", what)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

func testPublicKey(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	created := e.clock.Now()
	pk := newPublicKey("signer_1-a", map[string]string{"team": "video", "empty": ""})
	if err := e.s.ImportPublicKey(e.ctx, pk, ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey: %v", err)
	}
	checkTime(t, "CreatedAt set by ImportPublicKey", pk.CreatedAt, created)
	want := *pk
	want.Tags = maps.Clone(pk.Tags)
	checkKey(t, "GetPublicKey", e.getKey(t, pk.ARN), &want)
	tags, err := e.s.ListTags(e.ctx, string(pk.ARN))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	checkTags(t, "ListTags", tags, want.Tags)

	bare := newPublicKey("", nil)
	if err := e.s.ImportPublicKey(e.ctx, bare, ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey without name or tags: %v", err)
	}
	wantBare := *bare
	wantBare.Tags = map[string]string{}
	checkKey(t, "GetPublicKey without name or tags", e.getKey(t, bare.ARN), &wantBare)

	// The same ARN, or the same key under another ARN, is a conflict, and
	// changes nothing.
	e.clock.Advance(time.Second)
	sameARN := newPublicKey("other", map[string]string{"x": "y"})
	sameARN.ARN = pk.ARN
	wantCode(t, "ImportPublicKey with an existing ARN", e.s.ImportPublicKey(e.ctx, sameARN, ivsrt.PublicKeyQuota{}), ivsrt.ECONFLICT)
	sameKey := newPublicKey("again", map[string]string{"x": "y"})
	sameKey.Fingerprint, sameKey.Material = pk.Fingerprint, pk.Material
	err = e.s.ImportPublicKey(e.ctx, sameKey, ivsrt.PublicKeyQuota{})
	wantCode(t, "ImportPublicKey of the same key", err, ivsrt.ECONFLICT)
	if msg := ivsrt.ErrorMessage(err); !strings.Contains(msg, string(pk.ARN)) || !strings.Contains(msg, pk.Fingerprint) {
		t.Errorf("ImportPublicKey of the same key: message %q, want it to name %s and its fingerprint", msg, pk.ARN)
	}
	_, err = e.s.GetPublicKey(e.ctx, sameKey.ARN)
	wantCode(t, "GetPublicKey of the refused import", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(sameKey.ARN))
	wantCode(t, "ListTags of the refused import", err, ivsrt.ENOTFOUND)
	checkKey(t, "GetPublicKey after the conflicts", e.getKey(t, pk.ARN), &want)

	// A stage and a storage configuration with the key's id keep tags of
	// their own.
	twin := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", pk.ARN.ID()), Tags: map[string]string{"stage": "yes"}}
	if err := e.s.CreateStage(e.ctx, twin, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	twinStorage := &ivsrt.StorageConfiguration{ARN: ivsrt.NewStorageConfigurationARN("us-east-1", "123456789012", pk.ARN.ID()),
		S3BucketName: "bucket", Tags: map[string]string{"storage": "yes"}}
	if err := e.s.CreateStorageConfiguration(e.ctx, twinStorage); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}

	if err := e.s.DeletePublicKey(e.ctx, pk.ARN); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	_, err = e.s.GetPublicKey(e.ctx, pk.ARN)
	wantCode(t, "GetPublicKey after delete", err, ivsrt.ENOTFOUND)
	e.checkGone(t, string(pk.ARN), []string{"team"}, "DeletePublicKey", func() error { return e.s.DeletePublicKey(e.ctx, pk.ARN) })
	checkTags(t, "tags of the stage with the same id", e.listTags(t, twin.ARN), map[string]string{"stage": "yes"})
	checkTags(t, "tags of the storage configuration with the same id", e.getStorage(t, twinStorage.ARN).Tags, map[string]string{"storage": "yes"})
	checkKey(t, "the other public key", e.getKey(t, bare.ARN), &wantBare)

	// Once deleted, the key may be imported again, and starts clean.
	again := e.clock.Advance(time.Minute)
	reborn := newPublicKey("reborn", nil)
	reborn.Fingerprint, reborn.Material = pk.Fingerprint, pk.Material
	if err := e.s.ImportPublicKey(e.ctx, reborn, ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey of the deleted key: %v", err)
	}
	checkKey(t, "GetPublicKey of the key imported again", e.getKey(t, reborn.ARN), &ivsrt.PublicKey{ARN: reborn.ARN, Name: "reborn",
		Material: pk.Material, Fingerprint: pk.Fingerprint, Tags: map[string]string{}, CreatedAt: again})
}

// keyListing is how the list tests reach public keys.
func (e *env) keyListing() listing[*ivsrt.PublicKey, ivsrt.PublicKeyARN] {
	return listing[*ivsrt.PublicKey, ivsrt.PublicKeyARN]{op: "ListPublicKeys", noun: "public key",
		list:  func(p ivsrt.Page) ([]*ivsrt.PublicKey, string, error) { return e.s.ListPublicKeys(e.ctx, p) },
		arn:   func(pk *ivsrt.PublicKey) ivsrt.PublicKeyARN { return pk.ARN },
		check: checkKey}
}

func testListPublicKeys(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	keys := e.keyListing()
	keys.checkEmpty(t)
	// Stages and storage configurations are not public keys.
	e.createStage(t, "not-listed", nil)
	e.createStorage(t, "notlisted", nil)
	var want []*ivsrt.PublicKey
	for i := range 7 {
		now := e.clock.Advance(time.Second)
		tags := map[string]string{"n": fmt.Sprint(i)}
		if i%3 == 0 {
			tags = nil
		}
		pk := e.importKey(t, fmt.Sprintf("key-%d", i), tags)
		w := *pk
		w.Tags, w.CreatedAt = maps.Clone(tags), now
		if w.Tags == nil {
			w.Tags = map[string]string{}
		}
		want = append(want, &w)
	}
	keys.testPageSizes(t, want)
	// A key deleted between pages is not listed, and the position still
	// leads on.
	t.Run("changed between pages", func(t *testing.T) {
		keys.checkChangedBetweenPages(t, want,
			func(arn ivsrt.PublicKeyARN) error { return e.s.DeletePublicKey(e.ctx, arn) },
			func(t *testing.T) *ivsrt.PublicKey { return e.importKey(t, "added", nil) })
	})
	_, _, err := e.s.ListPublicKeys(e.ctx, ivsrt.Page{Limit: 0})
	wantCode(t, "ListPublicKeys with limit 0", err, ivsrt.EINVALID)
	_, _, err = e.s.ListPublicKeys(e.ctx, ivsrt.Page{After: "x", Limit: 1})
	wantCode(t, "ListPublicKeys after a bad position", err, ivsrt.EINVALID)
}

func testPublicKeyTags(t *testing.T, open OpenFunc) {
	testResourceTags(t, open, tagging{get: "GetPublicKey", list: "ListPublicKeys",
		create: func(t *testing.T, e *env, _ ivsrt.StageARN, name string, tags map[string]string) string {
			return string(e.importKey(t, name, tags).ARN)
		},
		got: func(t *testing.T, e *env, arn string) map[string]string {
			return e.getKey(t, ivsrt.PublicKeyARN(arn)).Tags
		},
		listed: func(t *testing.T, e *env, _ ivsrt.StageARN) map[string]string {
			return firstListed(t, e.keyListing(), func(pk *ivsrt.PublicKey) map[string]string { return pk.Tags })
		},
		missing: func() string { return string(newPublicKeyARN()) },
	})
}

func testPublicKeyQuota(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	quota := ivsrt.PublicKeyQuota{MaxPublicKeys: 2}
	var kept []ivsrt.PublicKeyARN
	for range 2 {
		pk := newPublicKey("", nil)
		if err := e.s.ImportPublicKey(e.ctx, pk, quota); err != nil {
			t.Fatalf("ImportPublicKey within quota: %v", err)
		}
		kept = append(kept, pk.ARN)
	}
	over := newPublicKey("over", map[string]string{"a": "1"})
	wantCode(t, "ImportPublicKey over quota", e.s.ImportPublicKey(e.ctx, over, quota), ivsrt.EQUOTA)
	_, err := e.s.GetPublicKey(e.ctx, over.ARN)
	wantCode(t, "GetPublicKey of the refused key", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(over.ARN))
	wantCode(t, "ListTags of the refused key", err, ivsrt.ENOTFOUND)
	// Stages do not count, and without a quota there is no limit.
	e.createStage(t, "not-a-key", nil)
	if err := e.s.ImportPublicKey(e.ctx, newPublicKey("", nil), ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey without a quota: %v", err)
	}
	// A delete makes room.
	if err := e.s.DeletePublicKey(e.ctx, kept[0]); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	if err := e.s.ImportPublicKey(e.ctx, newPublicKey("", nil), ivsrt.PublicKeyQuota{MaxPublicKeys: 3}); err != nil {
		t.Fatalf("ImportPublicKey after a delete: %v", err)
	}

	// Imports at once cannot together pass the quota.
	race := newEnv(t, open)
	const tries, limit = 8, 3
	var (
		wg   sync.WaitGroup
		errs [tries]error
	)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = race.s.ImportPublicKey(race.ctx, newPublicKey("", nil), ivsrt.PublicKeyQuota{MaxPublicKeys: limit})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch ivsrt.ErrorCode(err) {
		case "":
			ok++
		case ivsrt.EQUOTA:
		default:
			t.Errorf("ImportPublicKey at once: got %v, want nil or EQUOTA", err)
		}
	}
	keys, _, err := race.s.ListPublicKeys(race.ctx, ivsrt.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	if ok != limit || len(keys) != limit {
		t.Errorf("imports at once under a quota of %d: %d succeeded, %d stored", limit, ok, len(keys))
	}
}

// testPublicKeyImportRace imports one key many times at once: exactly one
// import stores it, and the others are conflicts naming it.
func testPublicKeyImportRace(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	for round := range 5 {
		const tries = 6
		template := newPublicKey("", nil)
		var (
			wg   sync.WaitGroup
			errs [tries]error
			pks  [tries]*ivsrt.PublicKey
		)
		for i := range tries {
			pks[i] = newPublicKey(fmt.Sprintf("try%d", i), map[string]string{"try": fmt.Sprint(i)})
			pks[i].Fingerprint, pks[i].Material = template.Fingerprint, template.Material
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = e.s.ImportPublicKey(e.ctx, pks[i], ivsrt.PublicKeyQuota{})
			}()
		}
		wg.Wait()
		var winner *ivsrt.PublicKey
		for i, err := range errs {
			switch ivsrt.ErrorCode(err) {
			case "":
				if winner != nil {
					t.Fatalf("round %d: the same key imported twice, as %s and %s", round, winner.ARN, pks[i].ARN)
				}
				winner = pks[i]
			case ivsrt.ECONFLICT:
			default:
				t.Fatalf("round %d: ImportPublicKey: got %v, want nil or ECONFLICT", round, err)
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no import succeeded: %v", round, errs)
		}
		for i, err := range errs {
			if err != nil && !strings.Contains(ivsrt.ErrorMessage(err), string(winner.ARN)) {
				t.Errorf("round %d: conflict %q does not name the key imported, %s", round, ivsrt.ErrorMessage(err), winner.ARN)
			}
			if err != nil {
				if _, err := e.s.ListTags(e.ctx, string(pks[i].ARN)); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
					t.Errorf("round %d: tags of a refused import: got %v, want ENOTFOUND", round, err)
				}
			}
		}
		checkTags(t, "tags of the key imported", e.getKey(t, winner.ARN).Tags, winner.Tags)
	}
}

// testSelfSignedToken stores a self-signed token, as the media plane does
// the first time one is presented: it keeps the key it was signed with,
// outlives the key, and is revoked like any other.
func testSelfSignedToken(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "self-signed", nil)
	pk := e.importKey(t, "signer", nil)
	now := e.clock.Now()
	tok := &ivsrt.ParticipantToken{
		ParticipantID:   "customer_jti-0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN", // 64, with _
		StageARN:        st.ARN,
		UserID:          "carol",
		Attributes:      map[string]string{"role": "guest"},
		Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe},
		DurationMinutes: 90,
		CreatedAt:       now,
		ExpirationTime:  now.Add(90 * time.Minute),
		PublicKeyARN:    pk.ARN,
	}
	if n := len(tok.ParticipantID); n != ivsrt.MaxParticipantIDLength {
		t.Fatalf("test participant id has %d characters, want %d", n, ivsrt.MaxParticipantIDLength)
	}
	if err := e.s.CreateParticipantToken(e.ctx, tok); err != nil {
		t.Fatalf("CreateParticipantToken of a self-signed token: %v", err)
	}
	got, err := e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	if err != nil {
		t.Fatalf("GetParticipantToken: %v", err)
	}
	checkToken(t, "GetParticipantToken", got, tok)

	// Presented again, or by another stage: the id is taken.
	again := *tok
	wantCode(t, "CreateParticipantToken again", e.s.CreateParticipantToken(e.ctx, &again), ivsrt.ECONFLICT)
	other := e.createStage(t, "other", nil)
	elsewhere := *tok
	elsewhere.StageARN = other.ARN
	wantCode(t, "CreateParticipantToken for another stage", e.s.CreateParticipantToken(e.ctx, &elsewhere), ivsrt.ECONFLICT)
	missing := *tok
	missing.ParticipantID, missing.StageARN = "missing-stage", newARN()
	wantCode(t, "CreateParticipantToken for a missing stage", e.s.CreateParticipantToken(e.ctx, &missing), ivsrt.ENOTFOUND)

	// The key goes; the token stays, and is revoked like any other.
	if err := e.s.DeletePublicKey(e.ctx, pk.ARN); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	revoked := e.clock.Advance(time.Minute)
	if err := e.s.RevokeParticipantToken(e.ctx, st.ARN, tok.ParticipantID, "banned"); err != nil {
		t.Fatalf("RevokeParticipantToken: %v", err)
	}
	want := *tok
	want.RevokedAt, want.RevokeReason = revoked, "banned"
	got, err = e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	if err != nil {
		t.Fatalf("GetParticipantToken after the revoke: %v", err)
	}
	checkToken(t, "GetParticipantToken after the revoke", got, &want)

	// A token this server issued has no key.
	issued := e.createToken(t, st.ARN)
	got, err = e.s.GetParticipantToken(e.ctx, issued.ParticipantID)
	if err != nil || got.PublicKeyARN != "" {
		t.Errorf("GetParticipantToken of an issued token: got %v, %v, want no public key", got, err)
	}

	// The stage takes its tokens with it.
	if err := e.s.DeleteStage(e.ctx, st.ARN); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	_, err = e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	wantCode(t, "GetParticipantToken after DeleteStage", err, ivsrt.ENOTFOUND)
}

// testTokenExchange: TOKEN_EXCHANGED keeps both tokens' fields on the
// event, changes the participant's user id and attributes, and makes the
// stored self-signed token the new one, which no older token replaces;
// the event stream tells nothing of it (IVS's does not).
func testTokenExchange(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "exchange", nil)
	pk := e.importKey(t, "signer", nil)
	issued := e.clock.Now()
	tok := &ivsrt.ParticipantToken{
		ParticipantID:   "guest-1",
		StageARN:        st.ARN,
		UserID:          "carol",
		Attributes:      map[string]string{"role": "guest"},
		Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe},
		DurationMinutes: 60,
		CreatedAt:       issued,
		ExpirationTime:  issued.Add(time.Hour),
		PublicKeyARN:    pk.ARN,
	}
	if err := e.s.CreateParticipantToken(e.ctx, tok); err != nil {
		t.Fatalf("CreateParticipantToken: %v", err)
	}
	sid := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: tok.ParticipantID,
		Time: e.clock.Advance(time.Second), UserID: tok.UserID, Attributes: tok.Attributes}).SessionID
	before := e.lastSeq(t)

	promoted := e.clock.Advance(time.Minute)
	next := &ivsrt.ParticipantToken{ParticipantID: tok.ParticipantID, StageARN: st.ARN, UserID: "carol-host",
		Attributes:   map[string]string{"role": "host", "featured": "true"},
		Capabilities: []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
		CreatedAt:    promoted, ExpirationTime: promoted.Add(2 * time.Hour), PublicKeyARN: pk.ARN}
	e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventTokenExchanged, ParticipantID: tok.ParticipantID, Time: promoted,
		PreviousToken: tok.Exchanged(), NewToken: next.Exchanged()})

	evs := e.allEvents(t, st.ARN, sid, tok.ParticipantID)
	if got := eventNames(evs); !slices.Equal(got, []ivsrt.EventName{ivsrt.EventJoined, ivsrt.EventTokenExchanged}) {
		t.Fatalf("events: got %v", got)
	}
	ev := evs[1]
	checkExchanged(t, "previousToken", ev.PreviousToken, tok)
	checkExchanged(t, "newToken", ev.NewToken, next)
	if evs[0].PreviousToken != nil || evs[0].NewToken != nil {
		t.Errorf("JOINED has exchanged tokens: %+v, %+v", evs[0].PreviousToken, evs[0].NewToken)
	}
	if after := e.lastSeq(t); after != before {
		t.Errorf("the exchange added stream events: seq %d, then %d", before, after)
	}

	p := e.getParticipant(t, st.ARN, sid, tok.ParticipantID)
	if p.UserID != "carol-host" || p.Attributes["role"] != "host" || p.Attributes["featured"] != "true" || p.State != ivsrt.ParticipantConnected {
		t.Errorf("the participant after the exchange: got %+v, want carol-host, the new attributes, connected", p)
	}
	want := *tok
	want.UserID, want.Attributes, want.Capabilities = next.UserID, next.Attributes, next.Capabilities
	want.ExpirationTime, want.NotBefore = next.ExpirationTime, promoted
	got, err := e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	if err != nil {
		t.Fatalf("GetParticipantToken: %v", err)
	}
	checkToken(t, "the stored token after the exchange", got, &want)

	// An exchange needs its new token; the participant's events are
	// intact after the refusal.
	err = e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventTokenExchanged, ParticipantID: tok.ParticipantID,
		Time: e.clock.Advance(time.Second), PreviousToken: next.Exchanged()})
	wantCode(t, "TOKEN_EXCHANGED without its new token", err, ivsrt.EINVALID)
	if got := len(e.allEvents(t, st.ARN, sid, tok.ParticipantID)); got != 2 {
		t.Errorf("events after a refused exchange: got %d, want 2", got)
	}

	// A token this server issued is never changed by one.
	issuedTok := e.createToken(t, st.ARN)
	e.join(t, st.ARN, issuedTok.ParticipantID, issuedTok.UserID)
	e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventTokenExchanged, ParticipantID: issuedTok.ParticipantID,
		Time: e.clock.Advance(time.Second), PreviousToken: issuedTok.Exchanged(), NewToken: next.Exchanged()})
	got, err = e.s.GetParticipantToken(e.ctx, issuedTok.ParticipantID)
	if err != nil {
		t.Fatalf("GetParticipantToken: %v", err)
	}
	checkToken(t, "an issued token after an exchange", got, issuedTok)
}

// checkExchanged compares what an event tells of a token with the token.
func checkExchanged(t *testing.T, what string, got *ivsrt.ExchangedToken, want *ivsrt.ParticipantToken) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: missing", what)
		return
	}
	if got.UserID != want.UserID || !slices.Equal(got.Capabilities, want.Capabilities) {
		t.Errorf("%s: got %q %v, want %q %v", what, got.UserID, got.Capabilities, want.UserID, want.Capabilities)
	}
	checkTags(t, what+": attributes", got.Attributes, want.Attributes)
	checkTime(t, what+": expirationTime", got.ExpirationTime, want.ExpirationTime)
}
