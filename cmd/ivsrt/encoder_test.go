package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// The encoder configuration operations through the whole server: pages,
// tags, the JSON on the wire, both CLIs and the console. api/encoder_test.go checks
// each operation's rules in detail.

var encoderARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:encoder-configuration/[a-zA-Z0-9]{12}$`)

// missingEncoder is a well-formed encoder configuration ARN no test creates.
const missingEncoder = "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/doesNotExist"

// createEncoder creates an encoder configuration through the SDK and
// returns its ARN.
func createEncoder(t testing.TB, c *ivsrealtime.Client, name string, video *types.Video, tags map[string]string) string {
	t.Helper()
	out, err := c.CreateEncoderConfiguration(testContext(t), &ivsrealtime.CreateEncoderConfigurationInput{
		Name: aws.String(name), Video: video, Tags: tags,
	})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration %q: %v", name, err)
	}
	return aws.ToString(out.EncoderConfiguration.Arn)
}

func TestEncoderConfigurationLifecycle(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	hd := &types.Video{Width: aws.Int32(1920), Height: aws.Int32(1080), Framerate: aws.Float32(29.97), Bitrate: aws.Int32(6000000)}
	arn := createEncoder(t, c, "hd", hd, map[string]string{"env": "test"})
	if !encoderARNPattern.MatchString(arn) {
		t.Errorf("ARN: got %q, want %v", arn, encoderARNPattern)
	}
	got, err := c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetEncoderConfiguration: %v", err)
	}
	checkJSON(t, "GetEncoderConfiguration", got.EncoderConfiguration,
		&types.EncoderConfiguration{Arn: aws.String(arn), Name: aws.String("hd"), Video: hd, Tags: map[string]string{"env": "test"}})

	// It outlives a restart, and is gone for good once deleted.
	m, c = restartServer(t, m)
	got, err = c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetEncoderConfiguration after a restart: %v", err)
	}
	checkJSON(t, "GetEncoderConfiguration after a restart", got.EncoderConfiguration.Video, hd)
	if _, err := c.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteEncoderConfiguration: %v", err)
	}
	_, err = c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(arn)})
	checkError(t, err, notFound("Encoder configuration not found", arn))
	_, err = c.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(arn)})
	checkError(t, err, notFound("Encoder configuration not found", arn))
	if n := countRows(t, m, "encoder_configurations"); n != 0 {
		t.Errorf("encoder_configurations rows after the delete: got %d, want 0", n)
	}
}

func TestEncoderConfigurationPagination(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	c, log := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	checkPagination(t, log, pagedResource{
		op: "ListEncoderConfigurations", defaultPage: 100,
		create: func(i int) string {
			return createEncoder(t, c, fmt.Sprintf("ec-%03d", i), nil, nil)
		},
		list: func(ctx context.Context, max *int32, next *string) ([]string, *string, error) {
			out, err := c.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: max, NextToken: next})
			if err != nil {
				return nil, nil, err
			}
			var arns []string
			for _, ec := range out.EncoderConfigurations {
				arns = append(arns, aws.ToString(ec.Arn))
			}
			return arns, out.NextToken, nil
		},
		del: func(ctx context.Context, arn string) error {
			_, err := c.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(arn)})
			return err
		},
		otherList: func(ctx context.Context, next *string) error {
			_, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{NextToken: next})
			return err
		},
	})
}

func TestEncoderConfigurationTags(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	arn := aws.String(createEncoder(t, c, "tagged", nil, map[string]string{"env": "test"}))
	other := aws.String(createEncoder(t, c, "other", nil, map[string]string{"env": "other"}))
	// A stage and a storage configuration with the same id as the encoder
	// configuration.
	id := strings.TrimPrefix(*arn, "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/")
	stage := "arn:aws:ivs:us-east-1:123456789012:stage/" + id
	storage := "arn:aws:ivs:us-east-1:123456789012:storage-configuration/" + id

	checkTagging(t, c, arn, other, func(t *testing.T) (got, listed map[string]string) {
		out, err := c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: arn})
		if err != nil {
			t.Fatalf("GetEncoderConfiguration: %v", err)
		}
		list, err := c.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{MaxResults: aws.Int32(1)})
		if err != nil {
			t.Fatalf("ListEncoderConfigurations: %v", err)
		}
		return out.EncoderConfiguration.Tags, list.EncoderConfigurations[0].Tags
	}, []badTagTarget{
		{"missing encoder configuration", missingEncoder, notFound("Resource not found", missingEncoder)},
		{"stage with the encoder configuration's id", stage, notFound("Resource not found", stage)},
		{"storage configuration with the encoder configuration's id", storage, notFound("Resource not found", storage)},
		{"channel", "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", validation("at 'resourceArn'",
			" or arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+")},
	})
}

// TestEncoderWireGolden pins the JSON of the encoder configuration
// operations, field names and order included, against
// testdata/encoder.golden. Run with -update to rewrite it after a
// deliberate change.
func TestEncoderWireGolden(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	tr := &transcript{m: m, names: map[string]string{}, count: map[string]int{}}
	s := fmt.Sprintf

	var created struct{ EncoderConfiguration struct{ Arn string } }
	tr.do(t, "POST", "/CreateEncoderConfiguration",
		`{"name":"golden","video":{"width":1080,"height":1920,"framerate":29.97,"bitrate":6000000},"tags":{"env":"test"}}`).decode(t, &created)
	arn := created.EncoderConfiguration.Arn
	tr.do(t, "POST", "/CreateEncoderConfiguration", `{}`)
	tr.do(t, "POST", "/CreateEncoderConfiguration", `{"video":{"width":640,"height":360,"framerate":60}}`)
	tr.do(t, "POST", "/GetEncoderConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/ListEncoderConfigurations", `{"maxResults":1}`)
	tr.do(t, "POST", "/ListEncoderConfigurations", `{}`)
	tr.do(t, "POST", tagsPath(arn), `{"tags":{"team":"video"}}`)
	tr.do(t, "DELETE", tagsPath(arn)+"?tagKeys=env", ``)
	tr.do(t, "GET", tagsPath(arn), ``)
	tr.do(t, "POST", "/DeleteEncoderConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/DeleteEncoderConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/GetEncoderConfiguration", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/GetEncoderConfiguration", `{"arn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234"}`)
	tr.do(t, "POST", "/CreateEncoderConfiguration", `{"name":"bad name","video":{"width":1921,"height":1080,"framerate":60.5,"bitrate":0}}`)
	tr.do(t, "POST", "/CreateEncoderConfiguration", `{"video":{"height":1920}}`)
	tr.do(t, "POST", "/CreateEncoderConfiguration", `{"video":{"framerate":"30"}}`)
	tr.do(t, "POST", "/ListEncoderConfigurations", `{"maxResults":101}`)

	got := encoderIDPattern.ReplaceAllStringFunc(tr.normalize(tr.buf.String()), func(id string) string {
		return "encoder-configuration/" + tr.placeholder("encoder", id)
	})
	checkGolden(t, filepath.Join("testdata", "encoder.golden"), got)
}

var encoderIDPattern = regexp.MustCompile(`encoder-configuration/[a-zA-Z0-9]{12}\b`)

// TestEncoderCLI runs the encoder configuration commands through ivsrt
// and, when it is installed, the aws CLI, and compares what they print:
// frame rates print as Python floats (30.0) in every format.
func TestEncoderCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs both CLIs some forty times")
	}
	t.Parallel()
	m, c := startServer(t)
	volatile := regexp.MustCompile(`encoder-configuration/[a-zA-Z0-9]{12}`)
	normalize := func(s string) string { return volatile.ReplaceAllString(s, "<volatile>") }

	out := cliMust(t, m, "create-encoder-configuration", "--name", "hd", "--video", "width=1920,height=1080,framerate=30,bitrate=6000000")
	var created struct {
		EncoderConfiguration struct {
			Arn, Name string
			Video     struct {
				Width, Height, Bitrate int
				Framerate              float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create-encoder-configuration output %s: %v", out, err)
	}
	ec := created.EncoderConfiguration
	if v := ec.Video; !encoderARNPattern.MatchString(ec.Arn) || ec.Name != "hd" || v.Width != 1920 || v.Height != 1080 || v.Framerate != 30 || v.Bitrate != 6000000 {
		t.Errorf("create-encoder-configuration: got %+v", ec)
	}
	if !strings.Contains(out, `"framerate": 30.0,`) {
		t.Errorf("create-encoder-configuration printed %s, want the frame rate as 30.0", out)
	}
	arn := ec.Arn
	cliCompare(t, m, 0, normalize, "create-encoder-configuration", "--name", "cli-compare", "--video", "framerate=29.97,width=1280", "--tags", "env=test,team=video")
	cliCompare(t, m, 0, normalize, "create-encoder-configuration", "--cli-input-json", `{"video": {"framerate": 25, "bitrate": 1}}`)
	cliCompare(t, m, 0, nil, "get-encoder-configuration", "--arn", arn)
	cliCompare(t, m, 0, nil, "get-encoder-configuration", "--cli-input-json", `{"arn": "`+arn+`"}`)
	cliCompare(t, m, 0, nil, "tag-resource", "--resource-arn", arn, "--tags", "extra=1,owner=ops")
	cliCompare(t, m, 0, nil, "list-tags-for-resource", "--resource-arn", arn)
	cliCompare(t, m, 0, nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "extra")
	cliCompare(t, m, 0, nil, "list-encoder-configurations")
	cliCompare(t, m, 0, nil, "list-encoder-configurations", "--max-results", "1")

	cliListsAll(t, m, "list-encoder-configurations", "encoderConfigurations", 7)

	// Errors: the server's, and the CLI's own checks before sending.
	cliCompare(t, m, 254, nil, "get-encoder-configuration", "--arn", missingEncoder)
	cliCompare(t, m, 254, nil, "create-encoder-configuration", "--video", "width=1921,height=1080")
	cliCompare(t, m, 254, nil, "create-encoder-configuration", "--video", "height=1920")
	cliCompare(t, m, 254, nil, "create-encoder-configuration", "--video", "framerate=60.5,bitrate=8500001")
	cliCompare(t, m, 254, nil, "create-encoder-configuration", "--name", strings.Repeat("x", 129))
	cliCompare(t, m, 254, nil, "list-encoder-configurations", "--max-results", "101")
	cliCompare(t, m, 252, nil, "create-encoder-configuration", "--video", "width=0,framerate=0.5")
	cliCompare(t, m, 255, nil, "create-encoder-configuration", "--video", "framerate=abc")
	cliCompare(t, m, 255, nil, "create-encoder-configuration", "--video", "width=1.5")
	cliCompare(t, m, 252, nil, "create-encoder-configuration", "--video", "fps=30")
	cliCompare(t, m, 252, nil, "create-encoder-configuration", "--cli-input-json", `{"video": {"framerate": "30"}}`)
	cliCompare(t, m, 252, nil, "delete-encoder-configuration", "--arn", "")

	// A delete prints nothing.
	other := createEncoder(t, c, "other", nil, nil)
	cliDeletes(t, m, "delete-encoder-configuration", other, "GetEncoderConfiguration", func(ctx context.Context) error {
		_, err := c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(other)})
		return err
	})
	cliCompare(t, m, 254, nil, "delete-encoder-configuration", "--arn", other)
}

// TestBrowserConsoleEncoders checks the console's encoders tab: it lists
// encoder configurations with their video, creates one from its form (the
// fields left empty take their defaults), shows the server's refusal of a
// bad one, and deletes one, showing the conflict while a composition uses
// it.
func TestBrowserConsoleEncoders(t *testing.T) {
	m, c := startServer(t, withDev())
	ctx := testContext(t)
	existing := createEncoder(t, c, "existing",
		&types.Video{Width: aws.Int32(1080), Height: aws.Int32(1920), Framerate: aws.Float32(29.97), Bitrate: aws.Int32(6000000)},
		map[string]string{"env": "test"})

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=encoders")
	console.WaitFor("the encoders tab", `document.getElementById("live").dataset.state === "ok" &&
		!document.getElementById("encoders-view").hidden && document.getElementById("stages-view").hidden &&
		document.getElementById("storage-view").hidden && document.querySelector("#tabs [aria-current]")?.dataset.tab === "encoders"`, 10*time.Second)
	row := func(arn string) string { return fmt.Sprintf(`#encoders tr[data-encoder-arn=%q]`, arn) }
	console.WaitFor("the existing encoder configuration", `(() => {
		const row = document.querySelector('`+row(existing)+`');
		return !!row && row.cells[0].textContent === "existing" && row.cells[2].textContent === "1080×1920, 29.97 fps, 6 Mbps" &&
			row.cells[3].textContent === "env=test";
	})()`, 10*time.Second)

	console.Do("create one with a frame rate alone",
		chromedp.SetValue(chromedp.ID("new-encoder-name"), "from-console"),
		chromedp.SetValue(chromedp.ID("new-encoder-framerate"), "60"),
		chromedp.Click(chromedp.CSS(`#create-encoder button[type=submit]`)),
	)
	console.WaitFor("the new one", `document.querySelectorAll("#encoders tbody tr").length === 2 &&
		[...document.querySelectorAll("#encoders tbody tr")].some((r) => r.cells[0].textContent === "from-console" &&
			r.cells[2].textContent === "1280×720, 60 fps, 2.5 Mbps") && document.getElementById("new-encoder-framerate").value === ""`, 10*time.Second)
	list, err := c.ListEncoderConfigurations(ctx, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListEncoderConfigurations: %v", err)
	}
	if n := len(list.EncoderConfigurations); n != 2 || aws.ToString(list.EncoderConfigurations[1].Name) != "from-console" {
		t.Fatalf("encoder configurations after the console created one: %s", jsonOf(list.EncoderConfigurations))
	}
	created := aws.ToString(list.EncoderConfigurations[1].Arn)
	got, err := c.GetEncoderConfiguration(ctx, &ivsrealtime.GetEncoderConfigurationInput{Arn: aws.String(created)})
	if err != nil {
		t.Fatalf("GetEncoderConfiguration: %v", err)
	}
	checkJSON(t, "the video the console asked for", got.EncoderConfiguration.Video,
		&types.Video{Width: aws.Int32(1280), Height: aws.Int32(720), Framerate: aws.Float32(60), Bitrate: aws.Int32(2500000)})

	// Too many pixels for the form to know: the server says so.
	console.Do("create one too big",
		chromedp.SetValue(chromedp.ID("new-encoder-width"), "1920"),
		chromedp.SetValue(chromedp.ID("new-encoder-height"), "1920"),
		chromedp.Click(chromedp.CSS(`#create-encoder button[type=submit]`)),
	)
	console.WaitFor("the refusal", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("width times height")`, 10*time.Second)

	// Deleting one a composition uses shows the conflict and keeps it.
	stage := createStage(t, c, "composed")
	composition := &ivsrt.Composition{
		ARN:      ivsrt.NewCompositionARN(testRegion, "123456789012", ivsrt.NewCompositionID()),
		StageARN: ivsrt.StageARN(stage),
		State:    ivsrt.CompositionStarting,
		Layout:   layout.Config{Grid: &layout.Grid{VideoAspectRatio: layout.AspectVideo}},
		Destinations: []ivsrt.CompositionDestination{{ID: ivsrt.NewCompositionID(), State: ivsrt.DestinationStarting,
			Configuration: ivsrt.DestinationConfiguration{Name: "live", Channel: &ivsrt.ChannelDestination{
				ChannelARN: "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", EncoderConfigurationARN: ivsrt.EncoderConfigurationARN(existing)}}}},
	}
	if err := m.DB.CreateComposition(ctx, composition); err != nil {
		t.Fatalf("CreateComposition: %v", err)
	}
	deleteRow := func(arn string) {
		t.Helper()
		console.Do("delete", chromedp.Click(chromedp.CSS(row(arn)+` [data-action=delete-encoder]`)))
		console.WaitFor("the confirmation", `document.getElementById("confirm").open`, 5*time.Second)
		console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	}
	deleteRow(existing)
	console.WaitFor("the conflict", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("is in use by composition")`, 10*time.Second)
	if !webtest.Eval[bool](console, `!!document.querySelector('`+row(existing)+`')`) {
		t.Errorf("the encoder configuration a composition uses is gone from the list")
	}
	console.FullScreenshot("console-encoders")

	composition.State, composition.EndTime = ivsrt.CompositionStopped, time.Now()
	if err := m.DB.UpdateComposition(ctx, composition); err != nil {
		t.Fatalf("UpdateComposition: %v", err)
	}
	deleteRow(existing)
	console.WaitFor("one left", `!document.querySelector('`+row(existing)+`') && !!document.querySelector('`+row(created)+`') &&
		document.getElementById("error").hidden`, 10*time.Second)
	deleteRow(created)
	console.WaitFor("the empty state", `!document.getElementById("no-encoders").hidden && !document.querySelector("#encoders tbody tr")`, 10*time.Second)

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}
