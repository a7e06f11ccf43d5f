package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/layout"
)

// The encoder configuration operations, through the AWS SDK for Go against
// a Server over a real SQLite store: the harness of the ingest tests, with
// no RTMP endpoints, serves them as it serves any operation.

var encoderARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:encoder-configuration/[a-zA-Z0-9]{12}$`)

// missingEncoder is a well-formed encoder configuration ARN no test creates.
const missingEncoder = "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/doesNotExist"

func newEncoderHarness(t *testing.T) *ingestHarness { return newIngestHarness(t, "", "") }

func (h *ingestHarness) createEncoder(t *testing.T, in *ivsrealtime.CreateEncoderConfigurationInput) *types.EncoderConfiguration {
	t.Helper()
	out, err := h.client.CreateEncoderConfiguration(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	return out.EncoderConfiguration
}

func (h *ingestHarness) getEncoder(t *testing.T, arn *string) *types.EncoderConfiguration {
	t.Helper()
	out, err := h.client.GetEncoderConfiguration(t.Context(), &ivsrealtime.GetEncoderConfigurationInput{Arn: arn})
	if err != nil {
		t.Fatalf("GetEncoderConfiguration: %v", err)
	}
	return out.EncoderConfiguration
}

func sdkVideo(width, height int32, framerate float32, bitrate int32) *types.Video {
	return &types.Video{Width: aws.Int32(width), Height: aws.Int32(height), Framerate: aws.Float32(framerate), Bitrate: aws.Int32(bitrate)}
}

// checkEncoderSDK compares what the SDK decoded, field by field.
func checkEncoderSDK(t *testing.T, what string, got, want *types.EncoderConfiguration) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

func TestEncoderConfigurationLifecycle(t *testing.T) {
	h := newEncoderHarness(t)
	ctx := t.Context()

	ec := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{
		Name:  aws.String("portrait_1-a"),
		Video: sdkVideo(1080, 1920, 29.97, 6000000),
		Tags:  map[string]string{"team": "video", "empty": ""},
	})
	arn := aws.ToString(ec.Arn)
	if !encoderARNPattern.MatchString(arn) {
		t.Errorf("arn: got %q, want %v", arn, encoderARNPattern)
	}
	want := &types.EncoderConfiguration{Arn: ec.Arn, Name: aws.String("portrait_1-a"), Video: sdkVideo(1080, 1920, 29.97, 6000000),
		Tags: map[string]string{"team": "video", "empty": ""}}
	checkEncoderSDK(t, "CreateEncoderConfiguration", ec, want)
	checkEncoderSDK(t, "GetEncoderConfiguration", h.getEncoder(t, ec.Arn), want)

	// Nothing is required: no video is the default one, and each member
	// left out of a video is its default.
	bare := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{})
	wantBare := &types.EncoderConfiguration{Arn: bare.Arn, Name: aws.String(""), Video: sdkVideo(1280, 720, 30, 2500000), Tags: map[string]string{}}
	checkEncoderSDK(t, "CreateEncoderConfiguration without input", bare, wantBare)
	if aws.ToString(bare.Arn) == arn {
		t.Errorf("two encoder configurations got the same ARN %s", arn)
	}
	partial := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(640), Height: aws.Int32(360)},
	})
	checkEncoderSDK(t, "CreateEncoderConfiguration with a size alone", partial,
		&types.EncoderConfiguration{Arn: partial.Arn, Name: aws.String(""), Video: sdkVideo(640, 360, 30, 2500000), Tags: map[string]string{}})
	rate := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Video: &types.Video{Framerate: aws.Float32(60), Bitrate: aws.Int32(1)}})
	checkEncoderSDK(t, "CreateEncoderConfiguration with a rate alone", rate,
		&types.EncoderConfiguration{Arn: rate.Arn, Name: aws.String(""), Video: sdkVideo(1280, 720, 60, 1), Tags: map[string]string{}})

	list, err := h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListEncoderConfigurations: %v", err)
	}
	wantList := []types.EncoderConfigurationSummary{
		{Arn: want.Arn, Name: want.Name, Tags: want.Tags},
		{Arn: bare.Arn, Name: aws.String(""), Tags: map[string]string{}},
		{Arn: partial.Arn, Name: aws.String(""), Tags: map[string]string{}},
		{Arn: rate.Arn, Name: aws.String(""), Tags: map[string]string{}},
	}
	if g, w := jsonText(list.EncoderConfigurations), jsonText(wantList); g != w {
		t.Errorf("ListEncoderConfigurations:\ngot  %s\nwant %s", g, w)
	}
	if list.NextToken != nil {
		t.Errorf("ListEncoderConfigurations: nextToken %q, want none", *list.NextToken)
	}

	if _, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: ec.Arn}); err != nil {
		t.Fatalf("DeleteEncoderConfiguration: %v", err)
	}
	_, err = h.client.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: ec.Arn})
	wantAPIError(t, "GetEncoderConfiguration after delete", err, "ResourceNotFoundException", http.StatusNotFound, "Encoder configuration not found: "+arn)
	_, err = h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: ec.Arn})
	wantAPIError(t, "DeleteEncoderConfiguration again", err, "ResourceNotFoundException", http.StatusNotFound, "Encoder configuration not found: "+arn)
	_, err = h.client.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: ec.Arn})
	wantAPIError(t, "ListTagsForResource after delete", err, "ResourceNotFoundException", http.StatusNotFound, arn)
	_, err = h.client.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(missingEncoder)})
	wantAPIError(t, "GetEncoderConfiguration of one never made", err, "ResourceNotFoundException", http.StatusNotFound,
		"Encoder configuration not found: "+missingEncoder)

	list, err = h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListEncoderConfigurations: %v", err)
	}
	if len(list.EncoderConfigurations) != 3 || aws.ToString(list.EncoderConfigurations[0].Arn) != aws.ToString(bare.Arn) {
		t.Errorf("ListEncoderConfigurations after a delete: got %s, want the other three", jsonText(list.EncoderConfigurations))
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEncoderConfigurationValidation(t *testing.T) {
	h := newEncoderHarness(t)
	ctx := t.Context()
	kept := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("kept")})

	const (
		arnRule  = "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+"
		stageARN = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
		pixels   = "failed to satisfy constraint: Member must have width times height less than or equal to 2073600"
	)
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = "v"
		}
		return m
	}
	video := func(change func(*types.Video)) *types.Video {
		v := &types.Video{}
		change(v)
		return v
	}
	creates := []struct {
		name string
		in   *ivsrealtime.CreateEncoderConfigurationInput
		msg  []string
	}{
		{"name pattern", &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("a b")},
			[]string{"Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"name 129", &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String(strings.Repeat("a", 129))},
			[]string{"at 'name' failed to satisfy constraint: Member must have length less than or equal to 128"}},
		{"width 0", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Width = aws.Int32(0) })},
			[]string{"Value '0' at 'video.width' failed to satisfy constraint: Member must have value greater than or equal to 2"}},
		{"width 1922", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Width = aws.Int32(1922) })},
			[]string{"Value '1922' at 'video.width' failed to satisfy constraint: Member must have value less than or equal to 1920"}},
		{"width odd", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Width = aws.Int32(853) })},
			[]string{"Value '853' at 'video.width' failed to satisfy constraint: Member must be an even number"}},
		{"height odd", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Height = aws.Int32(481) })},
			[]string{"Value '481' at 'video.height' failed to satisfy constraint: Member must be an even number"}},
		{"height 1", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Height = aws.Int32(1) })},
			[]string{"Value '1' at 'video.height' failed to satisfy constraint: Member must have value greater than or equal to 2"}},
		{"1920x1200", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Width, v.Height = aws.Int32(1920), aws.Int32(1200) })},
			[]string{"Value '1920x1200' at 'video' " + pixels}},
		{"height 1920 beside the default width", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Height = aws.Int32(1920) })},
			[]string{"Value '1280x1920' at 'video' " + pixels}},
		{"framerate 0.5", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Framerate = aws.Float32(0.5) })},
			[]string{"Value '0.5' at 'video.framerate' failed to satisfy constraint: Member must have value greater than or equal to 1"}},
		{"framerate 60.5", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Framerate = aws.Float32(60.5) })},
			[]string{"Value '60.5' at 'video.framerate' failed to satisfy constraint: Member must have value less than or equal to 60"}},
		{"bitrate 0", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Bitrate = aws.Int32(0) })},
			[]string{"Value '0' at 'video.bitrate' failed to satisfy constraint: Member must have value greater than or equal to 1"}},
		{"bitrate 8500001", &ivsrealtime.CreateEncoderConfigurationInput{Video: video(func(v *types.Video) { v.Bitrate = aws.Int32(8500001) })},
			[]string{"Value '8500001' at 'video.bitrate' failed to satisfy constraint: Member must have value less than or equal to 8500000"}},
		{"51 tags", &ivsrealtime.CreateEncoderConfigurationInput{Tags: tags(51)},
			[]string{"at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"}},
		{"tag key aws:", &ivsrealtime.CreateEncoderConfigurationInput{Tags: map[string]string{"aws:owner": "me"}}, []string{"at 'tags.key'", "aws:"}},
		{"everything wrong", &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("a.b"), Video: sdkVideo(3, 0, 0, 0)},
			[]string{"5 validation errors detected", "at 'name'", "at 'video.width'", "at 'video.height'", "at 'video.framerate'", "at 'video.bitrate'"}},
	}
	for _, tt := range creates {
		t.Run("Create "+tt.name, func(t *testing.T) {
			_, err := h.client.CreateEncoderConfiguration(ctx, tt.in)
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
	}

	arns := []struct {
		name, arn string
		msg       []string
	}{
		{"stage ARN", stageARN, []string{"at 'arn'", arnRule}},
		{"no id", "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/", []string{"at 'arn'", arnRule}},
		{"upper-case region", "arn:aws:ivs:US-EAST-1:123456789012:encoder-configuration/abcdABCD1234", []string{"at 'arn'", arnRule}},
		{"129", missingEncoder + strings.Repeat("a", 129-len(missingEncoder)), []string{"at 'arn'", "Member must have length less than or equal to 128"}},
		{"empty", "", []string{"at 'arn'", "Member must have length greater than or equal to 1"}},
	}
	for _, tt := range arns {
		t.Run("Get "+tt.name, func(t *testing.T) {
			_, err := h.client.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(tt.arn)})
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
		t.Run("Delete "+tt.name, func(t *testing.T) {
			_, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(tt.arn)})
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
	}

	stages, err := h.client.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	h.createStage(t, "a")
	h.createStage(t, "b")
	if stages, err = h.client.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(1)}); err != nil || stages.NextToken == nil {
		t.Fatalf("ListStages: got %v, %v, want a nextToken", stages, err)
	}
	lists := []struct {
		name string
		in   *ivsrealtime.ListEncoderConfigurationsInput
		msg  []string
	}{
		{"maxResults 0", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(0)},
			[]string{"Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"}},
		{"maxResults 101", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(101)},
			[]string{"Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"}},
		{"nextToken pattern", &ivsrealtime.ListEncoderConfigurationsInput{NextToken: aws.String("not a token!")},
			[]string{"Value 'not a token!' at 'nextToken'", "regular expression pattern: [a-zA-Z0-9+/=_-]*"}},
		{"nextToken 1025", &ivsrealtime.ListEncoderConfigurationsInput{NextToken: aws.String(strings.Repeat("A", 1025))},
			[]string{"at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 1024"}},
		{"forged nextToken", &ivsrealtime.ListEncoderConfigurationsInput{NextToken: aws.String("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")},
			[]string{"The nextToken is not valid"}},
		{"nextToken of ListStages", &ivsrealtime.ListEncoderConfigurationsInput{NextToken: stages.NextToken},
			[]string{"The nextToken is not valid"}},
	}
	for _, tt := range lists {
		t.Run("List "+tt.name, func(t *testing.T) {
			_, err := h.client.ListEncoderConfigurations(ctx, tt.in)
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
	}

	// Nothing was created by the refused calls.
	out, err := h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListEncoderConfigurations: %v", err)
	}
	if len(out.EncoderConfigurations) != 1 || aws.ToString(out.EncoderConfigurations[0].Arn) != aws.ToString(kept.Arn) {
		t.Errorf("encoder configurations after refused calls: got %s, want only %s", jsonText(out.EncoderConfigurations), aws.ToString(kept.Arn))
	}
}

// TestEncoderConfigurationWire sends what the SDK will not (members of the
// wrong type, unknown members) and checks the JSON answered, byte for byte:
// the model's member order, every member of the video, a frame rate as the
// shortest text of its float.
func TestEncoderConfigurationWire(t *testing.T) {
	h := newEncoderHarness(t)
	ofType := func(field, typ string) string {
		return "1 validation error detected: Value at '" + field + "' failed to satisfy constraint: Member must be of type " + typ
	}
	refused := []struct{ name, op, body, msg string }{
		{"width a string", "CreateEncoderConfiguration", `{"video":{"width":"1280"}}`, ofType("video.width", "integer")},
		{"width a fraction", "CreateEncoderConfiguration", `{"video":{"width":1280.5}}`, ofType("video.width", "integer")},
		{"width beyond int64", "CreateEncoderConfiguration", `{"video":{"width":9223372036854775808}}`, ofType("video.width", "integer")},
		{"framerate a string", "CreateEncoderConfiguration", `{"video":{"framerate":"30"}}`, ofType("video.framerate", "float")},
		{"framerate beyond float", "CreateEncoderConfiguration", `{"video":{"framerate":1e39}}`, ofType("video.framerate", "float")},
		{"bitrate a boolean", "CreateEncoderConfiguration", `{"video":{"bitrate":true}}`, ofType("video.bitrate", "integer")},
		{"video a list", "CreateEncoderConfiguration", `{"video":[1280,720]}`, ofType("video", "structure")},
		{"name a number", "CreateEncoderConfiguration", `{"name":7}`, ofType("name", "string")},
		{"tags a list", "CreateEncoderConfiguration", `{"tags":["a"]}`, ofType("tags", "map")},
		{"framerate -0", "CreateEncoderConfiguration", `{"video":{"framerate":-0}}`, "Value '-0' at 'video.framerate'"},
		{"framerate too small for a float", "CreateEncoderConfiguration", `{"video":{"framerate":1e-50}}`, "at 'video.framerate'"},
		{"broken JSON", "CreateEncoderConfiguration", `{"video":`, "not valid JSON"},
		{"get without arn", "GetEncoderConfiguration", `{}`, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
		{"delete without arn", "DeleteEncoderConfiguration", ``, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
		{"get arn a number", "GetEncoderConfiguration", `{"arn":1}`, ofType("arn", "string")},
		{"list maxResults a string", "ListEncoderConfigurations", `{"maxResults":"1"}`, ofType("maxResults", "integer")},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.raw(t, tt.op, tt.body)
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || status != http.StatusBadRequest || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got %d %s, want 400 with %q", status, body, tt.msg)
			}
		})
	}

	arnRE := regexp.MustCompile(`arn:aws:ivs:us-east-1:123456789012:encoder-configuration/[a-zA-Z0-9]{12}`)
	for _, tt := range []struct{ body, want string }{
		{``, `{"encoderConfiguration":{"arn":"ARN","name":"","video":{"width":1280,"height":720,"framerate":30,"bitrate":2500000},"tags":{}}}`},
		{`{"video":null,"tags":null,"name":null}`, `{"encoderConfiguration":{"arn":"ARN","name":"","video":{"width":1280,"height":720,"framerate":30,"bitrate":2500000},"tags":{}}}`},
		{`{"name":"ntsc","video":{"framerate":29.97},"tags":{"k":"v"},"unknown":1}`,
			`{"encoderConfiguration":{"arn":"ARN","name":"ntsc","video":{"width":1280,"height":720,"framerate":29.97,"bitrate":2500000},"tags":{"k":"v"}}}`},
		{`{"video":{"width":1920,"height":1080,"framerate":23.976,"bitrate":8500000}}`,
			`{"encoderConfiguration":{"arn":"ARN","name":"","video":{"width":1920,"height":1080,"framerate":23.976,"bitrate":8500000},"tags":{}}}`},
		{`{"video":{"framerate":59.940000000000001}}`,
			`{"encoderConfiguration":{"arn":"ARN","name":"","video":{"width":1280,"height":720,"framerate":59.94,"bitrate":2500000},"tags":{}}}`},
		{`{"video":{"width":2,"height":2,"framerate":1e0,"bitrate":1}}`,
			`{"encoderConfiguration":{"arn":"ARN","name":"","video":{"width":2,"height":2,"framerate":1,"bitrate":1},"tags":{}}}`},
	} {
		status, out := h.raw(t, "CreateEncoderConfiguration", tt.body)
		if status != http.StatusOK {
			t.Fatalf("CreateEncoderConfiguration %s: got %d %s", tt.body, status, out)
		}
		if got := arnRE.ReplaceAllString(string(out), "ARN"); got != tt.want {
			t.Errorf("CreateEncoderConfiguration %s:\ngot  %s\nwant %s", tt.body, got, tt.want)
		}
		arn := arnRE.FindString(string(out))
		if got := arnRE.ReplaceAllString(string(mustRaw(t, h, "GetEncoderConfiguration", `{"arn":"`+arn+`"}`)), "ARN"); got != tt.want {
			t.Errorf("GetEncoderConfiguration after %s:\ngot  %s\nwant %s", tt.body, got, tt.want)
		}
	}

	// Summaries have no video; the last page has no nextToken at all.
	list := string(mustRaw(t, h, "ListEncoderConfigurations", `{"maxResults":100}`))
	if strings.Contains(list, "video") || strings.Contains(list, "nextToken") ||
		!strings.HasPrefix(list, `{"encoderConfigurations":[{"arn":"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/`) {
		t.Errorf("ListEncoderConfigurations: got %s", list)
	}
	if got := string(mustRaw(t, h, "DeleteEncoderConfiguration", `{"arn":"`+arnRE.FindString(list)+`"}`)); got != "{}" {
		t.Errorf("DeleteEncoderConfiguration: got %s, want {}", got)
	}
}

// mustRaw sends op, which must succeed, and returns the body.
func mustRaw(t *testing.T, h *ingestHarness, op, body string) []byte {
	t.Helper()
	status, out := h.raw(t, op, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: got %d %s", op, body, status, out)
	}
	return out
}

func TestListEncoderConfigurationsPages(t *testing.T) {
	h := newEncoderHarness(t)
	ctx := t.Context()
	var all []string
	for i := range 7 {
		all = append(all, aws.ToString(h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String(fmt.Sprintf("ec-%d", i))}).Arn))
	}
	collect := func(in *ivsrealtime.ListEncoderConfigurationsInput) (arns []string, sizes []int) {
		t.Helper()
		p := ivsrealtime.NewListEncoderConfigurationsPaginator(h.client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListEncoderConfigurations: %v", err)
			}
			sizes = append(sizes, len(page.EncoderConfigurations))
			for _, s := range page.EncoderConfigurations {
				arns = append(arns, aws.ToString(s.Arn))
			}
		}
		return arns, sizes
	}
	for _, tt := range []struct {
		name      string
		in        *ivsrealtime.ListEncoderConfigurationsInput
		wantSizes []int
	}{
		{"default", &ivsrealtime.ListEncoderConfigurationsInput{}, []int{7}},
		{"1 a page", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(1)}, []int{1, 1, 1, 1, 1, 1, 1}},
		{"3 a page", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(3)}, []int{3, 3, 1}},
		{"7 a page", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(7)}, []int{7}},
		{"100 a page", &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(100)}, []int{7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			arns, sizes := collect(tt.in)
			if !slices.Equal(arns, all) || !slices.Equal(sizes, tt.wantSizes) {
				t.Errorf("got %v in pages of %v, want %v in pages of %v", arns, sizes, all, tt.wantSizes)
			}
		})
	}

	// Deleted between pages: the token leads on past it.
	first, err := h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(3)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, next %v", err, first.NextToken)
	}
	for _, arn := range all[2:4] {
		if _, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(arn)}); err != nil {
			t.Fatalf("DeleteEncoderConfiguration: %v", err)
		}
	}
	rest, _ := collect(&ivsrealtime.ListEncoderConfigurationsInput{NextToken: first.NextToken})
	if !slices.Equal(rest, all[4:]) {
		t.Errorf("after deletes between pages: got %v, want %v", rest, all[4:])
	}

	// The token belongs to the list it came from.
	_, err = h.client.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{NextToken: first.NextToken})
	wantAPIError(t, "nextToken of another operation", err, "ValidationException", http.StatusBadRequest, "nextToken is not valid")

	// Without maxResults a page holds 100.
	for i := range 100 {
		h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String(fmt.Sprintf("more-%d", i))})
	}
	page, err := h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil || len(page.EncoderConfigurations) != 100 || page.NextToken == nil {
		t.Fatalf("default page of 105: got %d, next %v, %v; want 100 and a nextToken", len(page.EncoderConfigurations), page.NextToken, err)
	}
	page, err = h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{NextToken: page.NextToken})
	if err != nil || len(page.EncoderConfigurations) != 5 || page.NextToken != nil {
		t.Errorf("second page of 105: got %d, next %v, %v; want 5 and none", len(page.EncoderConfigurations), page.NextToken, err)
	}
}

func TestEncoderConfigurationTags(t *testing.T) {
	h := newEncoderHarness(t)
	ctx := t.Context()
	ec := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Tags: map[string]string{"env": "test"}})
	other := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Tags: map[string]string{"env": "other"}})
	tagsOf := func() (got, listed map[string]string) {
		t.Helper()
		list, err := h.client.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(1)})
		if err != nil {
			t.Fatalf("ListEncoderConfigurations: %v", err)
		}
		return h.getEncoder(t, ec.Arn).Tags, list.EncoderConfigurations[0].Tags
	}
	for _, step := range []struct {
		name  string
		tag   map[string]string
		untag []string
		want  map[string]string
	}{
		{"merge and overwrite", map[string]string{"env": "prod", "team": "video"}, nil, map[string]string{"env": "prod", "team": "video"}},
		{"untag with an absent key", nil, []string{"env", "absent"}, map[string]string{"team": "video"}},
		{"untag all", nil, []string{"team"}, map[string]string{}},
	} {
		var err error
		if step.tag != nil {
			_, err = h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ec.Arn, Tags: step.tag})
		} else {
			_, err = h.client.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: ec.Arn, TagKeys: step.untag})
		}
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		out, err := h.client.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: ec.Arn})
		if err != nil {
			t.Fatalf("%s: ListTagsForResource: %v", step.name, err)
		}
		got, listed := tagsOf()
		if !equalMaps(out.Tags, step.want) || !equalMaps(got, step.want) || !equalMaps(listed, step.want) {
			t.Errorf("%s: ListTagsForResource %v, GetEncoderConfiguration %v, ListEncoderConfigurations %v, want %v",
				step.name, out.Tags, got, listed, step.want)
		}
	}
	if got := h.getEncoder(t, other.Arn).Tags; !equalMaps(got, map[string]string{"env": "other"}) {
		t.Errorf("tags of the other encoder configuration: got %v", got)
	}

	fifty := map[string]string{}
	for i := range 50 {
		fifty[fmt.Sprintf("k%02d", i)] = "v"
	}
	if _, err := h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ec.Arn, Tags: fifty}); err != nil {
		t.Fatalf("TagResource up to 50: %v", err)
	}
	_, err := h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ec.Arn, Tags: map[string]string{"fifty-first": "x"}})
	wantAPIError(t, "51st tag", err, "ValidationException", http.StatusBadRequest, "at most 50 tags")

	// A stage with the encoder configuration's id is another resource.
	stage := strings.Replace(aws.ToString(ec.Arn), "encoder-configuration/", "stage/", 1)
	for _, bad := range []struct {
		name, arn, code string
		status          int
		msg             string
	}{
		{"missing", missingEncoder, "ResourceNotFoundException", http.StatusNotFound, "Resource not found: " + missingEncoder},
		{"stage with its id", stage, "ResourceNotFoundException", http.StatusNotFound, "Resource not found: " + stage},
		{"channel", "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", "ValidationException", http.StatusBadRequest,
			" or arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+"},
	} {
		_, err := h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(bad.arn), Tags: map[string]string{"k": "v"}})
		wantAPIError(t, "TagResource "+bad.name, err, bad.code, bad.status, bad.msg)
		_, err = h.client.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(bad.arn), TagKeys: []string{"k"}})
		wantAPIError(t, "UntagResource "+bad.name, err, bad.code, bad.status, bad.msg)
		_, err = h.client.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(bad.arn)})
		wantAPIError(t, "ListTagsForResource "+bad.name, err, bad.code, bad.status, bad.msg)
	}
}

// TestDeleteEncoderConfigurationInUse: a composition that has not ended
// keeps the encoder configuration it encodes with, and the API answers
// the store's refusal as AWS does, with a ConflictException. Compositions
// are made in the store, as StartComposition would.
func TestDeleteEncoderConfigurationInUse(t *testing.T) {
	h := newEncoderHarness(t)
	ctx := t.Context()
	stage := ivsrt.StageARN(h.createStage(t, "composed"))
	used := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("used")})
	free := h.createEncoder(t, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("free")})
	c := &ivsrt.Composition{
		ARN:      ivsrt.NewCompositionARN(ingestRegion, ingestAccount, ivsrt.NewCompositionID()),
		StageARN: stage,
		State:    ivsrt.CompositionStarting,
		Layout:   layout.Config{Grid: &layout.Grid{VideoAspectRatio: layout.AspectVideo}},
		Destinations: []ivsrt.CompositionDestination{{ID: ivsrt.NewCompositionID(), State: ivsrt.DestinationStarting,
			Configuration: ivsrt.DestinationConfiguration{Name: "live", Channel: &ivsrt.ChannelDestination{
				ChannelARN: "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", EncoderConfigurationARN: ivsrt.EncoderConfigurationARN(*used.Arn)}}}},
	}
	if err := h.db.CreateComposition(ctx, c); err != nil {
		t.Fatalf("CreateComposition: %v", err)
	}

	_, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: used.Arn})
	wantAPIError(t, "DeleteEncoderConfiguration while a composition uses it", err, "ConflictException", http.StatusConflict,
		aws.ToString(used.Arn), string(c.ARN))
	h.getEncoder(t, used.Arn)
	if _, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: free.Arn}); err != nil {
		t.Errorf("DeleteEncoderConfiguration of one no composition uses: %v", err)
	}

	c.State, c.EndTime = ivsrt.CompositionStopped, time.Now()
	if err := h.db.UpdateComposition(ctx, c); err != nil {
		t.Fatalf("UpdateComposition: %v", err)
	}
	if _, err := h.client.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: used.Arn}); err != nil {
		t.Errorf("DeleteEncoderConfiguration once the composition stopped: %v", err)
	}
}
