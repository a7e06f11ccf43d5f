package storetest

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func newStorageARN() ivsrt.StorageConfigurationARN {
	return ivsrt.NewStorageConfigurationARN("us-east-1", "123456789012", ivsrt.NewStorageConfigurationID())
}

// createStorage stores a storage configuration with the given name and
// tags.
func (e *env) createStorage(t *testing.T, name string, tags map[string]string) *ivsrt.StorageConfiguration {
	t.Helper()
	sc := &ivsrt.StorageConfiguration{ARN: newStorageARN(), Name: name, S3BucketName: "bucket-" + strings.ToLower(name), Tags: tags}
	if err := e.s.CreateStorageConfiguration(e.ctx, sc); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	return sc
}

func (e *env) getStorage(t *testing.T, arn ivsrt.StorageConfigurationARN) *ivsrt.StorageConfiguration {
	t.Helper()
	return fetch(t, e, "GetStorageConfiguration", e.s.GetStorageConfiguration, arn)
}

// recordingTo is a recording configuration naming arn.
func recordingTo(arn ivsrt.StorageConfigurationARN) *ivsrt.AutoParticipantRecording {
	return &ivsrt.AutoParticipantRecording{StorageConfigurationARN: string(arn), MediaTypes: []string{"AUDIO_VIDEO"}}
}

func checkStorage(t *testing.T, what string, got, want *ivsrt.StorageConfiguration) {
	t.Helper()
	if got.ARN != want.ARN || got.Name != want.Name || got.S3BucketName != want.S3BucketName {
		t.Errorf("%s: got %s %q bucket %q, want %s %q bucket %q", what,
			got.ARN, got.Name, got.S3BucketName, want.ARN, want.Name, want.S3BucketName)
	}
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	if got.Tags == nil {
		t.Errorf("%s: Tags: got nil, want a map", what)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

func testStorageConfiguration(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	created := e.clock.Now()
	sc := &ivsrt.StorageConfiguration{ARN: newStorageARN(), Name: "archive_1-a", S3BucketName: "my-bucket.recordings",
		Tags: map[string]string{"team": "video", "empty": ""}}
	if err := e.s.CreateStorageConfiguration(e.ctx, sc); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	checkTime(t, "CreatedAt set by CreateStorageConfiguration", sc.CreatedAt, created)
	want := &ivsrt.StorageConfiguration{ARN: sc.ARN, Name: sc.Name, S3BucketName: sc.S3BucketName, Tags: maps.Clone(sc.Tags), CreatedAt: created}
	checkStorage(t, "GetStorageConfiguration", e.getStorage(t, sc.ARN), want)
	tags, err := e.s.ListTags(e.ctx, string(sc.ARN))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	checkTags(t, "ListTags", tags, want.Tags)

	bare := &ivsrt.StorageConfiguration{ARN: newStorageARN(), S3BucketName: "abc"}
	if err := e.s.CreateStorageConfiguration(e.ctx, bare); err != nil {
		t.Fatalf("CreateStorageConfiguration without name or tags: %v", err)
	}
	checkStorage(t, "GetStorageConfiguration without name or tags", e.getStorage(t, bare.ARN),
		&ivsrt.StorageConfiguration{ARN: bare.ARN, S3BucketName: "abc", Tags: map[string]string{}, CreatedAt: created})

	e.clock.Advance(time.Second)
	dup := &ivsrt.StorageConfiguration{ARN: sc.ARN, Name: "other", S3BucketName: "other-bucket", Tags: map[string]string{"x": "y"}}
	wantCode(t, "CreateStorageConfiguration with an existing ARN", e.s.CreateStorageConfiguration(e.ctx, dup), ivsrt.ECONFLICT)
	checkStorage(t, "GetStorageConfiguration after the duplicate", e.getStorage(t, sc.ARN), want)

	// A stage whose id is the storage configuration's keeps tags of its own.
	twin := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", sc.ARN.ID()), Tags: map[string]string{"stage": "yes"}}
	if err := e.s.CreateStage(e.ctx, twin, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}

	if err := e.s.DeleteStorageConfiguration(e.ctx, sc.ARN); err != nil {
		t.Fatalf("DeleteStorageConfiguration: %v", err)
	}
	_, err = e.s.GetStorageConfiguration(e.ctx, sc.ARN)
	wantCode(t, "GetStorageConfiguration after delete", err, ivsrt.ENOTFOUND)
	e.checkGone(t, string(sc.ARN), []string{"team"}, "DeleteStorageConfiguration", func() error { return e.s.DeleteStorageConfiguration(e.ctx, sc.ARN) })
	checkTags(t, "tags of the stage with the same id", e.listTags(t, twin.ARN), map[string]string{"stage": "yes"})
	checkStorage(t, "the other storage configuration", e.getStorage(t, bare.ARN),
		&ivsrt.StorageConfiguration{ARN: bare.ARN, S3BucketName: "abc", Tags: map[string]string{}, CreatedAt: created})

	// The ARN may be used again, and starts clean.
	again := e.clock.Advance(time.Minute)
	reborn := &ivsrt.StorageConfiguration{ARN: sc.ARN, Name: "reborn", S3BucketName: "new-bucket"}
	if err := e.s.CreateStorageConfiguration(e.ctx, reborn); err != nil {
		t.Fatalf("CreateStorageConfiguration with the deleted ARN: %v", err)
	}
	checkStorage(t, "GetStorageConfiguration of the new one", e.getStorage(t, sc.ARN),
		&ivsrt.StorageConfiguration{ARN: sc.ARN, Name: "reborn", S3BucketName: "new-bucket", Tags: map[string]string{}, CreatedAt: again})
}

// storageListing is how the list tests reach storage configurations.
func (e *env) storageListing() listing[*ivsrt.StorageConfiguration, ivsrt.StorageConfigurationARN] {
	return listing[*ivsrt.StorageConfiguration, ivsrt.StorageConfigurationARN]{
		op: "ListStorageConfigurations", noun: "storage configuration",
		list: func(p ivsrt.Page) ([]*ivsrt.StorageConfiguration, string, error) {
			return e.s.ListStorageConfigurations(e.ctx, p)
		},
		arn:   func(sc *ivsrt.StorageConfiguration) ivsrt.StorageConfigurationARN { return sc.ARN },
		check: checkStorage,
	}
}

func testListStorageConfigurations(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	storages := e.storageListing()
	storages.checkEmpty(t)
	// Stages are not storage configurations.
	e.createStage(t, "not-listed", nil)
	var want []*ivsrt.StorageConfiguration
	for i := range 7 {
		now := e.clock.Advance(time.Second)
		sc := &ivsrt.StorageConfiguration{ARN: newStorageARN(), Name: fmt.Sprintf("sc-%d", i), S3BucketName: fmt.Sprintf("bucket-%d", i),
			Tags: map[string]string{"n": fmt.Sprint(i)}}
		if i%3 == 0 {
			sc.Tags = nil
		}
		if err := e.s.CreateStorageConfiguration(e.ctx, sc); err != nil {
			t.Fatalf("CreateStorageConfiguration: %v", err)
		}
		want = append(want, &ivsrt.StorageConfiguration{ARN: sc.ARN, Name: sc.Name, S3BucketName: sc.S3BucketName, Tags: sc.Tags, CreatedAt: now})
	}
	storages.testPageSizes(t, want)
	t.Run("changed between pages", func(t *testing.T) {
		storages.checkChangedBetweenPages(t, want,
			func(arn ivsrt.StorageConfigurationARN) error { return e.s.DeleteStorageConfiguration(e.ctx, arn) },
			func(t *testing.T) *ivsrt.StorageConfiguration { return e.createStorage(t, "added", nil) })
	})
}

func testStorageConfigurationTags(t *testing.T, open OpenFunc) {
	testResourceTags(t, open, tagging{get: "GetStorageConfiguration", list: "ListStorageConfigurations",
		create: func(t *testing.T, e *env, _ ivsrt.StageARN, name string, tags map[string]string) string {
			return string(e.createStorage(t, name, tags).ARN)
		},
		got: func(t *testing.T, e *env, arn string) map[string]string {
			return e.getStorage(t, ivsrt.StorageConfigurationARN(arn)).Tags
		},
		listed: func(t *testing.T, e *env, _ ivsrt.StageARN) map[string]string {
			return firstListed(t, e.storageListing(), func(sc *ivsrt.StorageConfiguration) map[string]string { return sc.Tags })
		},
		missing: func() string { return string(newStorageARN()) },
	})
}

func testStorageConfigurationInUse(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	a := e.createStorage(t, "a", map[string]string{"k": "v"})
	b := e.createStorage(t, "b", nil)
	st := &ivsrt.Stage{ARN: newARN(), Name: "recorded", AutoParticipantRecording: recordingTo(a.ARN)}
	if err := e.s.CreateStage(e.ctx, st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage naming a storage configuration: %v", err)
	}

	deleteIs := func(what string, arn ivsrt.StorageConfigurationARN, code string) {
		t.Helper()
		err := e.s.DeleteStorageConfiguration(e.ctx, arn)
		wantCode(t, what, err, code)
		if code == ivsrt.ECONFLICT && err != nil && !strings.Contains(ivsrt.ErrorMessage(err), string(arn)) {
			t.Errorf("%s: message %q does not name %s", what, ivsrt.ErrorMessage(err), arn)
		}
	}
	deleteIs("delete a while the stage names it", a.ARN, ivsrt.ECONFLICT)
	checkStorage(t, "a after the refused delete", e.getStorage(t, a.ARN),
		&ivsrt.StorageConfiguration{ARN: a.ARN, Name: "a", S3BucketName: a.S3BucketName, Tags: map[string]string{"k": "v"}, CreatedAt: epoch})

	if _, err := e.s.UpdateStage(e.ctx, st.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo(b.ARN)}); err != nil {
		t.Fatalf("UpdateStage to b: %v", err)
	}
	if _, err := e.s.UpdateStage(e.ctx, st.ARN, ivsrt.StageUpdate{Name: ptr("renamed")}); err != nil {
		t.Fatalf("UpdateStage of the name: %v", err)
	}
	deleteIs("delete b after a rename of the stage that names it", b.ARN, ivsrt.ECONFLICT)
	deleteIs("delete a once no stage names it", a.ARN, "")

	// Recording turned off ("") names nothing.
	if _, err := e.s.UpdateStage(e.ctx, st.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo("")}); err != nil {
		t.Fatalf("UpdateStage to no storage configuration: %v", err)
	}
	deleteIs("delete b after recording was turned off", b.ARN, "")

	// A deleted stage names nothing.
	c := e.createStorage(t, "c", nil)
	other := &ivsrt.Stage{ARN: newARN(), AutoParticipantRecording: recordingTo(c.ARN)}
	if err := e.s.CreateStage(e.ctx, other, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	second := &ivsrt.Stage{ARN: newARN(), AutoParticipantRecording: recordingTo(c.ARN)}
	if err := e.s.CreateStage(e.ctx, second, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if err := e.s.DeleteStage(e.ctx, other.ARN); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	deleteIs("delete c while a second stage names it", c.ARN, ivsrt.ECONFLICT)
	if err := e.s.DeleteStage(e.ctx, second.ARN); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	deleteIs("delete c after its stages were deleted", c.ARN, "")
}

func testStageNamesMissingStorage(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	missing := newStorageARN()
	wantMissing := func(what string, err error) {
		t.Helper()
		wantCode(t, what, err, ivsrt.EINVALID)
		if err != nil && !strings.Contains(ivsrt.ErrorMessage(err), string(missing)) {
			t.Errorf("%s: message %q does not name %s", what, ivsrt.ErrorMessage(err), missing)
		}
	}

	st := &ivsrt.Stage{ARN: newARN(), Name: "refused", Tags: map[string]string{"a": "1"}, AutoParticipantRecording: recordingTo(missing)}
	tok := newToken(st.ARN, e.clock.Now())
	wantMissing("CreateStage", e.s.CreateStage(e.ctx, st, []*ivsrt.ParticipantToken{tok}, ivsrt.StageQuota{}))
	_, err := e.s.GetStage(e.ctx, st.ARN)
	wantCode(t, "GetStage of the refused stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(st.ARN))
	wantCode(t, "ListTags of the refused stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	wantCode(t, "GetParticipantToken of the refused stage", err, ivsrt.ENOTFOUND)

	off := &ivsrt.Stage{ARN: newARN(), AutoParticipantRecording: recordingTo("")}
	if err := e.s.CreateStage(e.ctx, off, nil, ivsrt.StageQuota{}); err != nil {
		t.Errorf("CreateStage with recording turned off: got %v, want nil", err)
	}

	sc := e.createStorage(t, "kept", nil)
	kept := &ivsrt.Stage{ARN: newARN(), Name: "kept", AutoParticipantRecording: recordingTo(sc.ARN)}
	if err := e.s.CreateStage(e.ctx, kept, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err = e.s.UpdateStage(e.ctx, kept.ARN, ivsrt.StageUpdate{Name: ptr("changed"), AutoParticipantRecording: recordingTo(missing)})
	wantMissing("UpdateStage", err)
	checkStage(t, "GetStage after the refused update", e.getStage(t, kept.ARN), &ivsrt.Stage{ARN: kept.ARN, Name: "kept",
		AutoParticipantRecording: recordingTo(sc.ARN), Tags: map[string]string{}, CreatedAt: epoch, UpdatedAt: epoch})

	// Once deleted, a storage configuration cannot be named either.
	if _, err := e.s.UpdateStage(e.ctx, kept.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo("")}); err != nil {
		t.Fatalf("UpdateStage: %v", err)
	}
	if err := e.s.DeleteStorageConfiguration(e.ctx, sc.ARN); err != nil {
		t.Fatalf("DeleteStorageConfiguration: %v", err)
	}
	missing = sc.ARN
	_, err = e.s.UpdateStage(e.ctx, kept.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo(sc.ARN)})
	wantMissing("UpdateStage naming a deleted storage configuration", err)
}

// testStorageDeleteRace races a stage naming a storage configuration
// against the deletion of the storage configuration: exactly one of them
// must win, so that no stage is left naming one that is gone.
func testStorageDeleteRace(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	existing := e.createStage(t, "existing", nil)
	for round := range 20 {
		sc := e.createStorage(t, fmt.Sprintf("race%d", round), nil)
		var (
			wg                   sync.WaitGroup
			createErr, deleteErr error
			updateErr            error
		)
		st := &ivsrt.Stage{ARN: newARN(), AutoParticipantRecording: recordingTo(sc.ARN)}
		wg.Add(3)
		go func() {
			defer wg.Done()
			createErr = e.s.CreateStage(e.ctx, st, nil, ivsrt.StageQuota{})
		}()
		go func() {
			defer wg.Done()
			_, updateErr = e.s.UpdateStage(e.ctx, existing.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo(sc.ARN)})
		}()
		go func() {
			defer wg.Done()
			deleteErr = e.s.DeleteStorageConfiguration(e.ctx, sc.ARN)
		}()
		wg.Wait()
		for _, err := range []error{createErr, updateErr} {
			if c := ivsrt.ErrorCode(err); c != "" && c != ivsrt.EINVALID {
				t.Fatalf("round %d: stage write: got %v, want nil or EINVALID", round, err)
			}
		}
		if c := ivsrt.ErrorCode(deleteErr); c != "" && c != ivsrt.ECONFLICT {
			t.Fatalf("round %d: DeleteStorageConfiguration: got %v, want nil or ECONFLICT", round, deleteErr)
		}
		named := createErr == nil || updateErr == nil
		if deleted := deleteErr == nil; deleted == named {
			t.Fatalf("round %d: CreateStage %v, UpdateStage %v, DeleteStorageConfiguration %v: want the delete to succeed exactly when no stage names it",
				round, createErr, updateErr, deleteErr)
		}
		// Free it for the next round.
		if _, err := e.s.UpdateStage(e.ctx, existing.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo("")}); err != nil {
			t.Fatalf("UpdateStage: %v", err)
		}
		if createErr == nil {
			if err := e.s.DeleteStage(e.ctx, st.ARN); err != nil {
				t.Fatalf("DeleteStage: %v", err)
			}
		}
	}
}
