package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func newEncoderARN() ivsrt.EncoderConfigurationARN {
	return ivsrt.NewEncoderConfigurationARN("us-east-1", "123456789012", ivsrt.NewEncoderConfigurationID())
}

// createEncoder stores an encoder configuration with the given name and
// tags and the default video.
func (e *env) createEncoder(t *testing.T, name string, tags map[string]string) *ivsrt.EncoderConfiguration {
	t.Helper()
	ec := &ivsrt.EncoderConfiguration{ARN: newEncoderARN(), Name: name, Video: ivsrt.DefaultVideo(), Tags: tags}
	if err := e.s.CreateEncoderConfiguration(e.ctx, ec); err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	return ec
}

func (e *env) getEncoder(t *testing.T, arn ivsrt.EncoderConfigurationARN) *ivsrt.EncoderConfiguration {
	t.Helper()
	return fetch(t, e, "GetEncoderConfiguration", e.s.GetEncoderConfiguration, arn)
}

func checkEncoder(t *testing.T, what string, got, want *ivsrt.EncoderConfiguration) {
	t.Helper()
	if got.ARN != want.ARN || got.Name != want.Name {
		t.Errorf("%s: got %s %q, want %s %q", what, got.ARN, got.Name, want.ARN, want.Name)
	}
	// Exactly: a frame rate comes back as the float32 it was.
	if got.Video != want.Video {
		t.Errorf("%s: Video: got %+v, want %+v", what, got.Video, want.Video)
	}
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	if got.Tags == nil {
		t.Errorf("%s: Tags: got nil, want a map", what)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

func testEncoderConfiguration(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	created := e.clock.Now()
	hd := ivsrt.Video{Width: 1920, Height: 1080, Framerate: 29.97, Bitrate: 8500000}
	ec := &ivsrt.EncoderConfiguration{ARN: newEncoderARN(), Name: "hd_1-a", Video: hd, Tags: map[string]string{"team": "video", "empty": ""}}
	if err := e.s.CreateEncoderConfiguration(e.ctx, ec); err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	checkTime(t, "CreatedAt set by CreateEncoderConfiguration", ec.CreatedAt, created)
	want := &ivsrt.EncoderConfiguration{ARN: ec.ARN, Name: ec.Name, Video: hd, Tags: maps.Clone(ec.Tags), CreatedAt: created}
	checkEncoder(t, "GetEncoderConfiguration", e.getEncoder(t, ec.ARN), want)
	tags, err := e.s.ListTags(e.ctx, string(ec.ARN))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	checkTags(t, "ListTags", tags, want.Tags)

	// The extremes of each member are kept as they are.
	for _, v := range []ivsrt.Video{
		{Width: 2, Height: 2, Framerate: 1, Bitrate: 1},
		{Width: 1080, Height: 1920, Framerate: 60, Bitrate: 1},
		{Width: 1280, Height: 720, Framerate: 23.976, Bitrate: 2500000},
		{Width: 640, Height: 360, Framerate: 59.94, Bitrate: 800000},
	} {
		x := &ivsrt.EncoderConfiguration{ARN: newEncoderARN(), Video: v}
		if err := e.s.CreateEncoderConfiguration(e.ctx, x); err != nil {
			t.Fatalf("CreateEncoderConfiguration %+v: %v", v, err)
		}
		checkEncoder(t, fmt.Sprintf("GetEncoderConfiguration %+v", v), e.getEncoder(t, x.ARN),
			&ivsrt.EncoderConfiguration{ARN: x.ARN, Video: v, Tags: map[string]string{}, CreatedAt: created})
	}

	bare := &ivsrt.EncoderConfiguration{ARN: newEncoderARN(), Video: ivsrt.DefaultVideo()}
	if err := e.s.CreateEncoderConfiguration(e.ctx, bare); err != nil {
		t.Fatalf("CreateEncoderConfiguration without name or tags: %v", err)
	}
	wantBare := &ivsrt.EncoderConfiguration{ARN: bare.ARN, Video: ivsrt.DefaultVideo(), Tags: map[string]string{}, CreatedAt: created}
	checkEncoder(t, "GetEncoderConfiguration without name or tags", e.getEncoder(t, bare.ARN), wantBare)

	e.clock.Advance(time.Second)
	dup := &ivsrt.EncoderConfiguration{ARN: ec.ARN, Name: "other", Video: ivsrt.DefaultVideo(), Tags: map[string]string{"x": "y"}}
	wantCode(t, "CreateEncoderConfiguration with an existing ARN", e.s.CreateEncoderConfiguration(e.ctx, dup), ivsrt.ECONFLICT)
	checkEncoder(t, "GetEncoderConfiguration after the duplicate", e.getEncoder(t, ec.ARN), want)

	// A stage and a storage configuration whose ids are the encoder
	// configuration's keep tags of their own.
	twin := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", ec.ARN.ID()), Tags: map[string]string{"stage": "yes"}}
	if err := e.s.CreateStage(e.ctx, twin, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	storageTwin := &ivsrt.StorageConfiguration{ARN: ivsrt.NewStorageConfigurationARN("us-east-1", "123456789012", ec.ARN.ID()),
		S3BucketName: "twin", Tags: map[string]string{"storage": "yes"}}
	if err := e.s.CreateStorageConfiguration(e.ctx, storageTwin); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}

	if err := e.s.DeleteEncoderConfiguration(e.ctx, ec.ARN); err != nil {
		t.Fatalf("DeleteEncoderConfiguration: %v", err)
	}
	_, err = e.s.GetEncoderConfiguration(e.ctx, ec.ARN)
	wantCode(t, "GetEncoderConfiguration after delete", err, ivsrt.ENOTFOUND)
	e.checkGone(t, string(ec.ARN), []string{"team"}, "DeleteEncoderConfiguration", func() error { return e.s.DeleteEncoderConfiguration(e.ctx, ec.ARN) })
	checkTags(t, "tags of the stage with the same id", e.listTags(t, twin.ARN), map[string]string{"stage": "yes"})
	checkTags(t, "tags of the storage configuration with the same id", e.getStorage(t, storageTwin.ARN).Tags, map[string]string{"storage": "yes"})
	checkEncoder(t, "the other encoder configuration", e.getEncoder(t, bare.ARN), wantBare)

	// The ARN may be used again, and starts clean.
	again := e.clock.Advance(time.Minute)
	reborn := &ivsrt.EncoderConfiguration{ARN: ec.ARN, Name: "reborn", Video: ivsrt.DefaultVideo()}
	if err := e.s.CreateEncoderConfiguration(e.ctx, reborn); err != nil {
		t.Fatalf("CreateEncoderConfiguration with the deleted ARN: %v", err)
	}
	checkEncoder(t, "GetEncoderConfiguration of the new one", e.getEncoder(t, ec.ARN),
		&ivsrt.EncoderConfiguration{ARN: ec.ARN, Name: "reborn", Video: ivsrt.DefaultVideo(), Tags: map[string]string{}, CreatedAt: again})
}

// encoderListing is how the list tests reach encoder configurations.
func (e *env) encoderListing() listing[*ivsrt.EncoderConfiguration, ivsrt.EncoderConfigurationARN] {
	return listing[*ivsrt.EncoderConfiguration, ivsrt.EncoderConfigurationARN]{
		op: "ListEncoderConfigurations", noun: "encoder configuration",
		list: func(p ivsrt.Page) ([]*ivsrt.EncoderConfiguration, string, error) {
			return e.s.ListEncoderConfigurations(e.ctx, p)
		},
		arn:   func(ec *ivsrt.EncoderConfiguration) ivsrt.EncoderConfigurationARN { return ec.ARN },
		check: checkEncoder,
	}
}

func testListEncoderConfigurations(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	encoders := e.encoderListing()
	encoders.checkEmpty(t)
	// Other resources are not encoder configurations.
	e.createStage(t, "not-listed", nil)
	e.createStorage(t, "not-listed", nil)
	var want []*ivsrt.EncoderConfiguration
	for i := range 7 {
		now := e.clock.Advance(time.Second)
		ec := &ivsrt.EncoderConfiguration{ARN: newEncoderARN(), Name: fmt.Sprintf("ec-%d", i),
			Video: ivsrt.Video{Width: 2 * (i + 1), Height: 2 * (i + 2), Framerate: float32(i) + 1.5, Bitrate: 1000 * (i + 1)},
			Tags:  map[string]string{"n": fmt.Sprint(i)}}
		if i%3 == 0 {
			ec.Tags = nil
		}
		if err := e.s.CreateEncoderConfiguration(e.ctx, ec); err != nil {
			t.Fatalf("CreateEncoderConfiguration: %v", err)
		}
		tags := ec.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		want = append(want, &ivsrt.EncoderConfiguration{ARN: ec.ARN, Name: ec.Name, Video: ec.Video, Tags: tags, CreatedAt: now})
	}
	encoders.testPageSizes(t, want)
	t.Run("changed between pages", func(t *testing.T) {
		encoders.checkChangedBetweenPages(t, want,
			func(arn ivsrt.EncoderConfigurationARN) error { return e.s.DeleteEncoderConfiguration(e.ctx, arn) },
			func(t *testing.T) *ivsrt.EncoderConfiguration { return e.createEncoder(t, "added", nil) })
	})
}

func testEncoderConfigurationTags(t *testing.T, open OpenFunc) {
	testResourceTags(t, open, tagging{get: "GetEncoderConfiguration", list: "ListEncoderConfigurations",
		create: func(t *testing.T, e *env, _ ivsrt.StageARN, name string, tags map[string]string) string {
			return string(e.createEncoder(t, name, tags).ARN)
		},
		got: func(t *testing.T, e *env, arn string) map[string]string {
			return e.getEncoder(t, ivsrt.EncoderConfigurationARN(arn)).Tags
		},
		listed: func(t *testing.T, e *env, _ ivsrt.StageARN) map[string]string {
			return firstListed(t, e.encoderListing(), func(ec *ivsrt.EncoderConfiguration) map[string]string { return ec.Tags })
		},
		missing: func() string { return string(newEncoderARN()) },
	})
}
