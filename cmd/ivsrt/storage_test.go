package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// The storage configuration operations, through the AWS SDK against the
// whole server, as in api_test.go.

var storageARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:storage-configuration/[a-zA-Z0-9]{12}$`)

// missingStorage is a well-formed storage configuration ARN no test creates.
const missingStorage = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/doesNotExist"

func conflict(msg ...string) wantError {
	return wantError{"ConflictException", http.StatusConflict, msg}
}

// addStorageConfiguration stores a storage configuration with the given
// ARN, for tests whose stages name a fixed one (the API picks the id of
// those it creates).
func addStorageConfiguration(t testing.TB, m *Main, arn string) {
	t.Helper()
	sc := &ivsrt.StorageConfiguration{ARN: ivsrt.StorageConfigurationARN(arn), Name: "fixture", S3BucketName: "recordings"}
	if err := m.DB.CreateStorageConfiguration(testContext(t), sc); err != nil {
		t.Fatalf("store storage configuration %s: %v", arn, err)
	}
}

// createStorage creates a storage configuration through the SDK and
// returns its ARN.
func createStorage(t testing.TB, c *ivsrealtime.Client, name, bucket string, tags map[string]string) string {
	t.Helper()
	out, err := c.CreateStorageConfiguration(testContext(t), &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String(name), S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}, Tags: tags,
	})
	if err != nil {
		t.Fatalf("CreateStorageConfiguration %q: %v", name, err)
	}
	return aws.ToString(out.StorageConfiguration.Arn)
}

func recordingTo(arn string) *types.AutoParticipantRecordingConfiguration {
	return &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String(arn)}
}

func TestStorageConfigurationLifecycle(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)

	created, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String("archive_1-a"),
		S3:   &types.S3StorageConfiguration{BucketName: aws.String("my-bucket.recordings")},
		Tags: map[string]string{"team": "video", "empty": ""},
	})
	if err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	sc := created.StorageConfiguration
	arn := aws.ToString(sc.Arn)
	if !storageARNPattern.MatchString(arn) {
		t.Errorf("ARN: got %q, want %v", arn, storageARNPattern)
	}
	want := &types.StorageConfiguration{
		Arn:  sc.Arn,
		Name: aws.String("archive_1-a"),
		S3:   &types.S3StorageConfiguration{BucketName: aws.String("my-bucket.recordings")},
		Tags: map[string]string{"team": "video", "empty": ""},
	}
	checkJSON(t, "CreateStorageConfiguration", sc, want)

	got, err := c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.Arn})
	if err != nil {
		t.Fatalf("GetStorageConfiguration: %v", err)
	}
	checkJSON(t, "GetStorageConfiguration", got.StorageConfiguration, want)

	// Only s3 is required: no name is an empty one, no tags an empty map.
	bare, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("abc")},
	})
	if err != nil {
		t.Fatalf("CreateStorageConfiguration with only s3: %v", err)
	}
	wantBare := &types.StorageConfiguration{Arn: bare.StorageConfiguration.Arn, Name: aws.String(""),
		S3: &types.S3StorageConfiguration{BucketName: aws.String("abc")}, Tags: map[string]string{}}
	checkJSON(t, "CreateStorageConfiguration with only s3", bare.StorageConfiguration, wantBare)
	if aws.ToString(bare.StorageConfiguration.Arn) == arn {
		t.Errorf("two storage configurations got the same ARN %s", arn)
	}

	list, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListStorageConfigurations: %v", err)
	}
	checkJSON(t, "ListStorageConfigurations", list.StorageConfigurations, []types.StorageConfigurationSummary{
		{Arn: want.Arn, Name: want.Name, S3: want.S3, Tags: want.Tags},
		{Arn: wantBare.Arn, Name: wantBare.Name, S3: wantBare.S3, Tags: wantBare.Tags},
	})
	if list.NextToken != nil {
		t.Errorf("ListStorageConfigurations: nextToken %q, want none", *list.NextToken)
	}

	if _, err := c.DeleteStorageConfiguration(ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn}); err != nil {
		t.Fatalf("DeleteStorageConfiguration: %v", err)
	}
	_, err = c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.Arn})
	checkError(t, err, notFound("Storage configuration not found", arn))
	_, err = c.DeleteStorageConfiguration(ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.Arn})
	checkError(t, err, notFound("Storage configuration not found", arn))
	_, err = c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: sc.Arn})
	checkError(t, err, notFound(arn))

	list, err = c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListStorageConfigurations: %v", err)
	}
	if len(list.StorageConfigurations) != 1 || aws.ToString(list.StorageConfigurations[0].Arn) != aws.ToString(wantBare.Arn) {
		t.Errorf("ListStorageConfigurations after a delete: got %v, want only %s", jsonOf(list.StorageConfigurations), *wantBare.Arn)
	}
}

func TestStorageConfigurationValidation(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	kept := createStorage(t, c, "kept", "kept-bucket", nil)

	const (
		le128       = "Member must have length less than or equal to 128"
		arnRule     = "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+"
		stageARN    = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
		wrongRegion = "arn:aws:ivs:US-EAST-1:123456789012:storage-configuration/abcdABCD1234"
	)
	long := func(n int) string { return strings.Repeat("a", n) }
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = "v"
		}
		return m
	}
	create := func(name *string, bucket string, tags map[string]string) func() error {
		return func() error {
			_, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
				Name: name, S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}, Tags: tags,
			})
			return err
		}
	}
	get := func(arn string) func() error {
		return func() error {
			_, err := c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: aws.String(arn)})
			return err
		}
	}
	del := func(arn string) func() error {
		return func() error {
			_, err := c.DeleteStorageConfiguration(ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: aws.String(arn)})
			return err
		}
	}
	list := func(maxResults *int32, nextToken *string) func() error {
		return func() error {
			_, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: maxResults, NextToken: nextToken})
			return err
		}
	}
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	stagesPage, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(1)})
	if err != nil || stagesPage.NextToken == nil {
		t.Fatalf("ListStages: got %v, %v, want a nextToken", stagesPage, err)
	}

	tests := []validationCase{
		{"name 129", create(aws.String(long(129)), "bucket", nil), []string{"at 'name'", le128}},
		{"name pattern", create(aws.String("bad name!"), "bucket", nil),
			[]string{"Value 'bad name!' at 'name'", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"name with a dot", create(aws.String("a.b"), "bucket", nil), []string{"at 'name'", "[a-zA-Z0-9-_]*"}},
		{"bucket 2", create(nil, "ab", nil), []string{"Value 'ab' at 's3.bucketName'", "Member must have length greater than or equal to 3"}},
		{"bucket 64", create(nil, long(64), nil), []string{"at 's3.bucketName'", "Member must have length less than or equal to 63"}},
		{"bucket empty", create(nil, "", nil), []string{"at 's3.bucketName'", "greater than or equal to 3"}},
		{"bucket upper case", create(nil, "MyBucket", nil),
			[]string{"Value 'MyBucket' at 's3.bucketName'", "Member must satisfy regular expression pattern: [a-z0-9-.]+"}},
		{"bucket underscore", create(nil, "my_bucket", nil), []string{"at 's3.bucketName'", "[a-z0-9-.]+"}},
		{"51 tags", create(nil, "bucket", tags(51)), []string{"at 'tags'", "Member must have length less than or equal to 50"}},
		{"tag key 129", create(nil, "bucket", map[string]string{long(129): "v"}), []string{"at 'tags.key'", le128}},
		{"tag value 257", create(nil, "bucket", map[string]string{"k": long(257)}),
			[]string{"at 'tags.value'", "Member must have length less than or equal to 256"}},
		{"tag key aws:", create(nil, "bucket", map[string]string{"aws:owner": "me"}), []string{"at 'tags.key'", "aws:"}},
		{"two problems", create(aws.String("bad name"), "B", nil), []string{"2 validation errors detected", "at 'name'", "at 's3.bucketName'"}},

		{"get stage ARN", get(stageARN), []string{"at 'arn'", arnRule}},
		{"get upper-case region", get(wrongRegion), []string{"at 'arn'", arnRule}},
		{"get no id", get("arn:aws:ivs:us-east-1:123456789012:storage-configuration/"), []string{"at 'arn'", arnRule}},
		{"get 129", get(missingStorage + long(129-len(missingStorage))), []string{"at 'arn'", le128}},
		{"get empty", get(""), []string{"at 'arn'", "Member must have length greater than or equal to 1"}},
		{"delete stage ARN", del(stageARN), []string{"at 'arn'", arnRule}},
		{"delete 129", del(missingStorage + long(129-len(missingStorage))), []string{"at 'arn'", le128}},
		{"delete empty", del(""), []string{"at 'arn'", "Member must have length greater than or equal to 1"}},

		{"list maxResults 0", list(aws.Int32(0), nil), []string{"Value '0' at 'maxResults'", "Member must have value greater than or equal to 1"}},
		{"list maxResults 101", list(aws.Int32(101), nil), []string{"Value '101' at 'maxResults'", "Member must have value less than or equal to 100"}},
		{"list nextToken pattern", list(nil, aws.String("not a token!")),
			[]string{"Value 'not a token!' at 'nextToken'", "regular expression pattern: [a-zA-Z0-9+/=_-]*"}},
		{"list nextToken 1025", list(nil, aws.String(long(1025))), []string{"at 'nextToken'", "Member must have length less than or equal to 1024"}},
		{"list forged nextToken", list(nil, aws.String("AQAAAAAAAAAAAAAAAAAAAAAAAA")), []string{"The nextToken is not valid"}},
		{"list nextToken of ListStages", list(nil, stagesPage.NextToken), []string{"The nextToken is not valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, tt.call(), validation(tt.want...))
		})
	}

	// Nothing was created by the refused calls.
	out, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListStorageConfigurations: %v", err)
	}
	if len(out.StorageConfigurations) != 1 || aws.ToString(out.StorageConfigurations[0].Arn) != kept {
		t.Errorf("storage configurations after refused calls: got %s, want only %s", jsonOf(out.StorageConfigurations), kept)
	}
}

// TestStorageConfigurationValidationWire sends what the SDK refuses to:
// missing required members, wrong types.
func TestStorageConfigurationValidationWire(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	null := func(field string) []string {
		return []string{"Value null at '" + field + "' failed to satisfy constraint: Member must not be null"}
	}
	ofType := func(field, typ string) []string {
		return []string{"Value at '" + field + "' failed to satisfy constraint: Member must be of type " + typ}
	}
	tests := []struct {
		name, path, body string
		want             []string
	}{
		{"create no body", "/CreateStorageConfiguration", ``, null("s3")},
		{"create no s3", "/CreateStorageConfiguration", `{"name":"n"}`, null("s3")},
		{"create null s3", "/CreateStorageConfiguration", `{"s3":null}`, null("s3")},
		{"create no bucketName", "/CreateStorageConfiguration", `{"s3":{}}`, null("s3.bucketName")},
		{"create bucketName number", "/CreateStorageConfiguration", `{"s3":{"bucketName":5}}`, ofType("s3.bucketName", "string")},
		{"create s3 string", "/CreateStorageConfiguration", `{"s3":"bucket"}`, ofType("s3", "structure")},
		{"create name number", "/CreateStorageConfiguration", `{"name":1,"s3":{"bucketName":"bucket"}}`, ofType("name", "string")},
		{"create tags list", "/CreateStorageConfiguration", `{"s3":{"bucketName":"bucket"},"tags":["a"]}`, ofType("tags", "map")},
		{"create broken JSON", "/CreateStorageConfiguration", `{"s3":`, []string{"not valid JSON"}},
		{"get no arn", "/GetStorageConfiguration", `{}`, null("arn")},
		{"get arn number", "/GetStorageConfiguration", `{"arn":1}`, ofType("arn", "string")},
		{"delete no arn", "/DeleteStorageConfiguration", `{}`, null("arn")},
		{"list maxResults string", "/ListStorageConfigurations", `{"maxResults":"1"}`, ofType("maxResults", "integer")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRawError(t, signedRequest(t, m, "POST", tt.path, tt.body), validation(tt.want...))
		})
	}
}

func TestStorageConfigurationPagination(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	c, log := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	checkPagination(t, log, pagedResource{
		op: "ListStorageConfigurations", defaultPage: 100,
		create: func(i int) string {
			return createStorage(t, c, fmt.Sprintf("sc-%03d", i), fmt.Sprintf("bucket-%02d", i%10), nil)
		},
		list: func(ctx context.Context, max *int32, next *string) ([]string, *string, error) {
			out, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: max, NextToken: next})
			if err != nil {
				return nil, nil, err
			}
			var arns []string
			for _, sc := range out.StorageConfigurations {
				arns = append(arns, aws.ToString(sc.Arn))
			}
			return arns, out.NextToken, nil
		},
		del: func(ctx context.Context, arn string) error {
			_, err := c.DeleteStorageConfiguration(ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: aws.String(arn)})
			return err
		},
		otherList: func(ctx context.Context, next *string) error {
			_, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{NextToken: next})
			return err
		},
	})
}

// pagedResource is a kind of resource listed page by page, for
// checkPagination.
type pagedResource struct {
	op          string             // the List operation
	defaultPage int                // the model's default maxResults
	create      func(i int) string // creates the i-th resource, returning its ARN
	list        func(ctx context.Context, max *int32, next *string) (arns []string, token *string, err error)
	del         func(ctx context.Context, arn string) error
	otherList   func(ctx context.Context, next *string) error // another List operation, given the token
}

// checkPagination lists seven resources three at a time: pages of 3, 3
// and 1 in creation order, a nextToken on the wire on every page but the
// last (which has no nextToken key at all); resources deleted between
// pages are not listed and the token leads on; the token is refused by
// another List operation; without maxResults a page holds the model's
// default.
func checkPagination(t *testing.T, log *wireLog, r pagedResource) {
	t.Helper()
	ctx := testContext(t)
	var arns []string
	for i := range 7 {
		arns = append(arns, r.create(i))
	}
	var (
		got   []string
		sizes []int
		next  *string
	)
	for {
		page, token, err := r.list(ctx, aws.Int32(3), next)
		if err != nil {
			t.Fatalf("%s: %v", r.op, err)
		}
		sizes = append(sizes, len(page))
		got = append(got, page...)
		if next = token; next == nil {
			break
		}
	}
	checkJSON(t, "page sizes", sizes, []int{3, 3, 1})
	checkJSON(t, "in creation order", got, arns)
	pages := log.all("/" + r.op)
	for i, ex := range pages {
		var body map[string]any
		ex.decode(t, &body)
		_, has := body["nextToken"]
		if last := i == len(pages)-1; has == last {
			t.Errorf("page %d: nextToken present %v, want %v (%s)", i, has, !last, ex.Body)
		}
	}

	_, first, err := r.list(ctx, aws.Int32(3), nil)
	if err != nil {
		t.Fatalf("%s: %v", r.op, err)
	}
	for _, arn := range arns[2:4] {
		if err := r.del(ctx, arn); err != nil {
			t.Fatalf("delete %s: %v", arn, err)
		}
	}
	rest, _, err := r.list(ctx, nil, first)
	if err != nil {
		t.Fatalf("%s with the token: %v", r.op, err)
	}
	checkJSON(t, "after deletes between pages", rest, arns[4:])
	checkError(t, r.otherList(ctx, first), validation("The nextToken is not valid"))

	for i := range r.defaultPage + 1 - 5 {
		r.create(100 + i)
	}
	page, token, err := r.list(ctx, nil, nil)
	if err != nil {
		t.Fatalf("%s: %v", r.op, err)
	}
	if len(page) != r.defaultPage || token == nil {
		t.Errorf("default page of %d: got %d and nextToken %v, want %d and a nextToken", r.defaultPage+1, len(page), token, r.defaultPage)
	}
	page, token, err = r.list(ctx, aws.Int32(100), token)
	if err != nil {
		t.Fatalf("%s: %v", r.op, err)
	}
	if len(page) != 1 || token != nil {
		t.Errorf("second page of %d: got %d and nextToken %v, want 1 and none", r.defaultPage+1, len(page), token)
	}
}

func TestStorageConfigurationTags(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	arn := aws.String(createStorage(t, c, "tagged", "bucket", map[string]string{"env": "test"}))
	other := aws.String(createStorage(t, c, "other", "bucket", map[string]string{"env": "other"}))
	// A stage with the same id as the storage configuration.
	stage := "arn:aws:ivs:us-east-1:123456789012:stage/" + strings.TrimPrefix(*arn, "arn:aws:ivs:us-east-1:123456789012:storage-configuration/")

	checkTagging(t, c, arn, other, func(t *testing.T) (got, listed map[string]string) {
		out, err := c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: arn})
		if err != nil {
			t.Fatalf("GetStorageConfiguration: %v", err)
		}
		list, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: aws.Int32(1)})
		if err != nil {
			t.Fatalf("ListStorageConfigurations: %v", err)
		}
		return out.StorageConfiguration.Tags, list.StorageConfigurations[0].Tags
	}, []badTagTarget{
		{"missing storage configuration", missingStorage, notFound("Resource not found", missingStorage)},
		{"stage with the storage configuration's id", stage, notFound("Resource not found", stage)},
		{"channel", "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", validation("at 'resourceArn'",
			"Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+ or "+
				"arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+")},
	})
}

// TestStorageConfigurationInUse: a storage configuration that a stage's
// recording names cannot be deleted, and a stage cannot name one that
// does not exist.
func TestStorageConfigurationInUse(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	a := createStorage(t, c, "a", "bucket-a", nil)
	b := createStorage(t, c, "b", "bucket-b", nil)

	created, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("recorded"), AutoParticipantRecordingConfiguration: recordingTo(a)})
	if err != nil {
		t.Fatalf("CreateStage naming a storage configuration: %v", err)
	}
	stage := created.Stage.Arn
	if got := aws.ToString(created.Stage.AutoParticipantRecordingConfiguration.StorageConfigurationArn); got != a {
		t.Errorf("CreateStage: storageConfigurationArn got %q, want %q", got, a)
	}
	deleteStorage := func(arn string) error {
		_, err := c.DeleteStorageConfiguration(ctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: aws.String(arn)})
		return err
	}
	checkError(t, deleteStorage(a), conflict(a, *stage))
	if _, err := c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: aws.String(a)}); err != nil {
		t.Errorf("GetStorageConfiguration after the refused delete: %v", err)
	}

	// Another stage may name it too; UpdateStage moves a stage to b.
	second, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: recordingTo(a)})
	if err != nil {
		t.Fatalf("CreateStage naming the same storage configuration: %v", err)
	}
	if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: stage, AutoParticipantRecordingConfiguration: recordingTo(b)}); err != nil {
		t.Fatalf("UpdateStage to b: %v", err)
	}
	checkError(t, deleteStorage(a), conflict(a, *second.Stage.Arn))
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: second.Stage.Arn}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	if err := deleteStorage(a); err != nil {
		t.Errorf("DeleteStorageConfiguration once no stage names it: %v", err)
	}

	// A rename keeps b named; turning recording off ("") frees it.
	if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: stage, Name: aws.String("renamed")}); err != nil {
		t.Fatalf("UpdateStage of the name: %v", err)
	}
	checkError(t, deleteStorage(b), conflict(b, *stage))
	if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: stage, AutoParticipantRecordingConfiguration: recordingTo("")}); err != nil {
		t.Fatalf("UpdateStage turning recording off: %v", err)
	}
	if err := deleteStorage(b); err != nil {
		t.Errorf("DeleteStorageConfiguration after recording was turned off: %v", err)
	}

	// Naming one that does not exist, or no longer does, is refused.
	for _, arn := range []string{missingStorage, a} {
		missing := validation("Value '"+arn+"' at 'autoParticipantRecordingConfiguration.storageConfigurationArn'",
			"Member must name an existing storage configuration")
		_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("refused"),
			AutoParticipantRecordingConfiguration: recordingTo(arn),
			ParticipantTokenConfigurations:        []types.ParticipantTokenConfiguration{{UserId: aws.String("u")}}})
		checkError(t, err, missing)
		_, err = c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: stage, Name: aws.String("changed"), AutoParticipantRecordingConfiguration: recordingTo(arn)})
		checkError(t, err, missing)
	}
	stages, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	if len(stages.Stages) != 1 {
		t.Errorf("stages after refused creates: got %s, want only %s", jsonOf(stages.Stages), *stage)
	}
	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: stage})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	if name := aws.ToString(got.Stage.Name); name != "renamed" {
		t.Errorf("stage name after refused updates: got %q, want %q", name, "renamed")
	}
	if rec := got.Stage.AutoParticipantRecordingConfiguration; rec == nil || aws.ToString(rec.StorageConfigurationArn) != "" {
		t.Errorf("stage recording after refused updates: got %s, want no storage configuration", jsonOf(rec))
	}
	// A stage that does not exist is not found, whatever it names.
	_, err = c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(missingStage), AutoParticipantRecordingConfiguration: recordingTo(missingStorage)})
	checkError(t, err, notFound(missingStage))
}

// TestStorageWireGolden pins the JSON of the storage configuration
// operations, field names and order included, against
// testdata/storage.golden. Run with -update to rewrite it after a
// deliberate change.
func TestStorageWireGolden(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	tr := &transcript{m: m, names: map[string]string{}, count: map[string]int{}}
	s := fmt.Sprintf

	var created struct{ StorageConfiguration struct{ Arn string } }
	tr.do(t, "POST", "/CreateStorageConfiguration", `{"name":"golden","s3":{"bucketName":"golden-bucket"},"tags":{"env":"test"}}`).decode(t, &created)
	arn := created.StorageConfiguration.Arn
	tr.do(t, "POST", "/CreateStorageConfiguration", `{"s3":{"bucketName":"bare-bucket"}}`)
	tr.do(t, "POST", "/GetStorageConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/ListStorageConfigurations", `{"maxResults":1}`)
	tr.do(t, "POST", "/ListStorageConfigurations", `{}`)
	tr.do(t, "POST", tagsPath(arn), `{"tags":{"team":"video"}}`)
	tr.do(t, "DELETE", tagsPath(arn)+"?tagKeys=env", ``)
	tr.do(t, "GET", tagsPath(arn), ``)
	var stage struct{ Stage struct{ Arn string } }
	tr.do(t, "POST", "/CreateStage", s(`{"name":"recorded","autoParticipantRecordingConfiguration":{"storageConfigurationArn":%q}}`, arn)).decode(t, &stage)
	tr.do(t, "POST", "/DeleteStorageConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/CreateStage", s(`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":%q}}`, missingStorage))
	tr.do(t, "POST", "/UpdateStage", s(`{"arn":%q,"autoParticipantRecordingConfiguration":{"storageConfigurationArn":""}}`, stage.Stage.Arn))
	tr.do(t, "POST", "/DeleteStorageConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/GetStorageConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/CreateStorageConfiguration", `{"name":"bad name","s3":{"bucketName":"Bad_Bucket"}}`)
	tr.do(t, "POST", "/CreateStorageConfiguration", `{}`)

	got := storageIDPattern.ReplaceAllStringFunc(tr.normalize(tr.buf.String()), func(id string) string {
		return "storage-configuration/" + tr.placeholder("storage", id)
	})
	checkGolden(t, filepath.Join("testdata", "storage.golden"), got)
}

var storageIDPattern = regexp.MustCompile(`storage-configuration/[a-zA-Z0-9]{12}\b`)

// checkGolden compares got with the golden file at path, or with -update
// rewrites it.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("wire transcript differs from %s (run with -update after a deliberate change):\n%s", path, lineDiff(string(want), got))
	}
}

// TestStorageCLI runs the storage configuration commands through ivsrt
// and, when it is installed, the aws CLI, and compares what they print.
func TestStorageCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs both CLIs some forty times")
	}
	t.Parallel()
	m, c := startServer(t)
	volatile := regexp.MustCompile(`storage-configuration/[a-zA-Z0-9]{12}|stage/[a-zA-Z0-9]{12}`)
	normalize := func(s string) string { return volatile.ReplaceAllString(s, "<volatile>") }

	// The brief's example, and the same with both CLIs in every format.
	out := cliMust(t, m, "create-storage-configuration", "--s3", "bucketName=bkt", "--name", "n")
	var created struct {
		StorageConfiguration struct {
			Arn, Name string
			S3        struct{ BucketName string }
		}
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create-storage-configuration output %s: %v", out, err)
	}
	if sc := created.StorageConfiguration; !storageARNPattern.MatchString(sc.Arn) || sc.Name != "n" || sc.S3.BucketName != "bkt" {
		t.Errorf("create-storage-configuration: got %+v", sc)
	}
	arn := created.StorageConfiguration.Arn
	cliCompare(t, m, 0, normalize, "create-storage-configuration", "--name", "cli-compare", "--s3", "bucketName=cli-bucket", "--tags", "env=test,team=video")
	cliCompare(t, m, 0, nil, "get-storage-configuration", "--arn", arn)
	cliCompare(t, m, 0, nil, "get-storage-configuration", "--cli-input-json", `{"arn": "`+arn+`"}`)
	cliCompare(t, m, 0, nil, "tag-resource", "--resource-arn", arn, "--tags", "extra=1,owner=ops")
	cliCompare(t, m, 0, nil, "list-tags-for-resource", "--resource-arn", arn)
	cliCompare(t, m, 0, nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "extra")
	cliCompare(t, m, 0, nil, "list-storage-configurations")
	cliCompare(t, m, 0, nil, "list-storage-configurations", "--max-results", "1")

	cliListsAll(t, m, "list-storage-configurations", "storageConfigurations", 2)

	// Errors: the server's, and the CLI's own checks before sending.
	if _, err := c.CreateStage(testContext(t), &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: recordingTo(arn)}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	cliCompare(t, m, 254, normalize, "delete-storage-configuration", "--arn", arn)
	cliCompare(t, m, 254, nil, "get-storage-configuration", "--arn", missingStorage)
	cliCompare(t, m, 254, nil, "create-storage-configuration", "--s3", "bucketName=Upper_Case")
	cliCompare(t, m, 254, nil, "create-storage-configuration", "--s3", "bucketName=bkt", "--name", strings.Repeat("x", 129))
	cliCompare(t, m, 254, nil, "create-stage", "--auto-participant-recording-configuration", "storageConfigurationArn="+missingStorage)
	cliCompare(t, m, 254, nil, "list-storage-configurations", "--max-results", "101")
	// (The aws CLI's usage line differs here: ivsrt is checked alone.)
	if r := cliRun(t, m, "create-storage-configuration", "--name", "n"); r.code != 252 ||
		!strings.Contains(r.stderr, "error: the following arguments are required: --s3") {
		t.Errorf("create-storage-configuration without --s3: exit %d, stderr %q, want 252 and the argument named", r.code, r.stderr)
	}
	cliCompare(t, m, 252, nil, "create-storage-configuration", "--s3", "bucketName=ab")
	cliCompare(t, m, 252, nil, "create-storage-configuration", "--s3", "bucket=b")
	cliCompare(t, m, 252, nil, "delete-storage-configuration", "--arn", "")

	// A delete prints nothing.
	other := createStorage(t, c, "other", "other-bucket", nil)
	cliDeletes(t, m, "delete-storage-configuration", other, "GetStorageConfiguration", func(ctx context.Context) error {
		_, err := c.GetStorageConfiguration(ctx, &ivsrealtime.GetStorageConfigurationInput{Arn: aws.String(other)})
		return err
	})
}

// TestBrowserConsoleStorage checks the console's storage tab: it lists
// storage configurations, creates one from its form, and deletes one,
// showing the conflict while a stage names it.
func TestBrowserConsoleStorage(t *testing.T) {
	m, c := startServer(t, withDev())
	ctx := testContext(t)
	existing := createStorage(t, c, "existing", "existing-bucket", map[string]string{"env": "test"})

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=storage")
	console.WaitFor("the storage tab", `document.getElementById("live").dataset.state === "ok" &&
		!document.getElementById("storage-view").hidden && document.getElementById("stages-view").hidden &&
		document.getElementById("delivery-view").hidden && document.querySelector("#tabs [aria-current]")?.dataset.tab === "storage"`, 10*time.Second)
	row := func(arn string) string { return fmt.Sprintf(`#storage tr[data-storage-arn=%q]`, arn) }
	console.WaitFor("the existing storage configuration", `(() => {
		const row = document.querySelector('`+row(existing)+`');
		return !!row && row.cells[0].textContent === "existing" && row.cells[2].textContent === "existing-bucket" && row.cells[3].textContent === "env=test";
	})()`, 10*time.Second)

	console.Do("create one",
		chromedp.SetValue(chromedp.ID("new-storage-name"), "from-console"),
		chromedp.SetValue(chromedp.ID("new-storage-bucket"), "console-bucket"),
		chromedp.Click(chromedp.CSS(`#create-storage button[type=submit]`)),
	)
	console.WaitFor("the new one", `document.querySelectorAll("#storage tbody tr").length === 2 &&
		[...document.querySelectorAll("#storage tbody tr")].some((r) => r.cells[0].textContent === "from-console" && r.cells[2].textContent === "console-bucket")`, 10*time.Second)
	list, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListStorageConfigurations: %v", err)
	}
	if n := len(list.StorageConfigurations); n != 2 || aws.ToString(list.StorageConfigurations[1].Name) != "from-console" ||
		aws.ToString(list.StorageConfigurations[1].S3.BucketName) != "console-bucket" {
		t.Fatalf("storage configurations after the console created one: %s", jsonOf(list.StorageConfigurations))
	}
	created := aws.ToString(list.StorageConfigurations[1].Arn)

	// Deleting one a stage names shows the conflict and keeps it.
	stage, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: recordingTo(existing)})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	deleteRow := func(arn string) {
		t.Helper()
		console.Do("delete", chromedp.Click(chromedp.CSS(row(arn)+` [data-action=delete-storage]`)))
		console.WaitFor("the confirmation", `document.getElementById("confirm").open`, 5*time.Second)
		console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	}
	deleteRow(existing)
	console.WaitFor("the conflict", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("is in use by stage")`, 10*time.Second)
	if !webtest.Eval[bool](console, `!!document.querySelector('`+row(existing)+`')`) {
		t.Errorf("the storage configuration a stage names is gone from the list")
	}
	console.FullScreenshot("console-storage")

	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: stage.Stage.Arn}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	deleteRow(existing)
	console.WaitFor("one left", `!document.querySelector('`+row(existing)+`') && !!document.querySelector('`+row(created)+`') &&
		document.getElementById("error").hidden`, 10*time.Second)
	deleteRow(created)
	console.WaitFor("the empty state", `!document.getElementById("no-storage").hidden && !document.querySelector("#storage tbody tr")`, 10*time.Second)

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// badTagTarget is a resource ARN the tag operations must refuse, and how.
type badTagTarget struct {
	name, arn string
	want      wantError
}

// checkTagging takes a taggable resource, created with the tag env=test,
// through TagResource, UntagResource and ListTagsForResource: tags merge
// and overwrite, untagging an absent key is no error, what reads the
// resource (tagsOf: its Get and its List, which must list it first) shows
// the same tags, another resource's (other, tagged env=other) stay
// untouched, a resource holds 50 tags and no more; and each of bad is
// refused by all three operations.
func checkTagging(t *testing.T, c *ivsrealtime.Client, arn, other *string, tagsOf func(t *testing.T) (got, listed map[string]string), bad []badTagTarget) {
	t.Helper()
	ctx := testContext(t)
	steps := []struct {
		name  string
		tag   map[string]string
		untag []string
		want  map[string]string
	}{
		{"merge and overwrite", map[string]string{"env": "prod", "team": "video"}, nil, map[string]string{"env": "prod", "team": "video"}},
		{"untag with an absent key", nil, []string{"env", "absent"}, map[string]string{"team": "video"}},
		{"untag all", nil, []string{"team"}, map[string]string{}},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tag != nil {
				if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: arn, Tags: tt.tag}); err != nil {
					t.Fatalf("TagResource: %v", err)
				}
			} else if _, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: arn, TagKeys: tt.untag}); err != nil {
				t.Fatalf("UntagResource: %v", err)
			}
			out, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
			if err != nil {
				t.Fatalf("ListTagsForResource: %v", err)
			}
			checkJSON(t, "ListTagsForResource", out.Tags, tt.want)
			got, listed := tagsOf(t)
			checkJSON(t, "tags read back", got, tt.want)
			checkJSON(t, "tags listed", listed, tt.want)
		})
	}
	out, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: other})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	checkJSON(t, "tags of the other resource", out.Tags, map[string]string{"env": "other"})

	fifty := map[string]string{}
	for i := range 49 {
		fifty[fmt.Sprintf("k%02d", i)] = "v"
	}
	fifty["env"] = "x"
	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: other, Tags: fifty}); err != nil {
		t.Fatalf("TagResource up to 50: %v", err)
	}
	_, err = c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: other, Tags: map[string]string{"fifty-first": "x"}})
	checkError(t, err, validation("at most 50 tags"))

	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(b.arn), Tags: map[string]string{"k": "v"}})
			checkError(t, err, b.want)
			_, err = c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(b.arn), TagKeys: []string{"k"}})
			checkError(t, err, b.want)
			_, err = c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(b.arn)})
			checkError(t, err, b.want)
		})
	}
}
