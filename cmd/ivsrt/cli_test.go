package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// The CLI's tests run the built binary against a server of the test, as a
// user would, and compare what it prints with what the aws CLI prints for
// the same call when the aws CLI is installed.

var (
	cliBuildOnce sync.Once
	cliBuildDir  string
	cliBuildPath string
	cliBuildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop() // the cluster tests' PostgreSQL
	if cliBuildDir != "" {
		os.RemoveAll(cliBuildDir)
	}
	os.Exit(code)
}

// cliBinary builds ivsrt once for the whole run.
func cliBinary(t testing.TB) string {
	t.Helper()
	cliBuildOnce.Do(func() {
		cliBuildDir, cliBuildErr = os.MkdirTemp("", "ivsrt-cli-test-")
		if cliBuildErr != nil {
			return
		}
		cliBuildPath = filepath.Join(cliBuildDir, "ivsrt")
		if runtime.GOOS == "windows" {
			cliBuildPath += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", cliBuildPath, ".").CombinedOutput()
		if err != nil {
			cliBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	return cliBuildPath
}

// cliEnv is the environment of both CLIs: nothing of the user's AWS setup
// or proxies, the test keys.
func cliEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch upper := strings.ToUpper(name); {
		case strings.HasPrefix(upper, "AWS_"), strings.HasPrefix(upper, "IVSRT_"), strings.HasSuffix(upper, "_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID="+testAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+testSecretAccessKey,
		"AWS_DEFAULT_REGION="+testRegion,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		"NO_PROXY=127.0.0.1",
	)
	return append(env, extra...)
}

// cliResult is what one run of a CLI printed, and its exit status.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliExec runs a program with args and env.
func cliExec(t testing.TB, ctx context.Context, env []string, path string, args ...string) cliResult {
	t.Helper()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %s: %v", filepath.Base(path), strings.Join(args, " "), err)
	}
	return r
}

// cliRun runs `ivsrt args...` against m.
func cliRun(t testing.TB, m *Main, args ...string) cliResult {
	t.Helper()
	return cliExec(t, testContext(t), cliEnv("IVSRT_ENDPOINT_URL=http://"+m.Addr()), cliBinary(t), args...)
}

// cliMust runs `ivsrt args...`, which must succeed, and returns its output.
func cliMust(t testing.TB, m *Main, args ...string) string {
	t.Helper()
	r := cliRun(t, m, args...)
	if r.code != 0 {
		t.Fatalf("ivsrt %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// cliAWSPath is the aws CLI, or "" when it is not installed.
func cliAWSPath() string {
	p, _ := exec.LookPath("aws")
	return p
}

// cliAWS runs `aws ivs-realtime args...` against m.
func cliAWS(t testing.TB, m *Main, args ...string) cliResult {
	t.Helper()
	full := append([]string{"ivs-realtime", "--endpoint-url", "http://" + m.Addr()}, args...)
	return cliExec(t, testContext(t), cliEnv(), cliAWSPath(), full...)
}

// cliCompare runs the same command with both CLIs in each output format
// and checks they print the same, byte for byte, on stdout and stderr;
// volatile values are replaced by normalize (nil: none) after both ran.
// Without the aws CLI it only checks that ivsrt succeeds or fails as
// wantCode says.
func cliCompare(t *testing.T, m *Main, wantCode int, normalize func(string) string, args ...string) {
	t.Helper()
	cliCompareOutputs(t, m, []string{"json", "text", "table"}, wantCode, normalize, args...)
}

// cliCompareOutputs is cliCompare in the given output formats.
func cliCompareOutputs(t *testing.T, m *Main, outputs []string, wantCode int, normalize func(string) string, args ...string) {
	t.Helper()
	if normalize == nil {
		normalize = func(s string) string { return s }
	}
	for _, output := range outputs {
		full := append(append([]string(nil), args...), "--output", output)
		got := cliRun(t, m, full...)
		if got.code != wantCode {
			t.Errorf("ivsrt %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(full, " "), got.code, wantCode, got.stdout, got.stderr)
		}
		if cliAWSPath() == "" {
			continue
		}
		want := cliAWS(t, m, full...)
		if (want.code == 0) != (got.code == 0) {
			t.Errorf("%s --output %s: aws exit %d, ivsrt exit %d", args[0], output, want.code, got.code)
		}
		if g, w := normalize(got.stdout), normalize(want.stdout); g != w {
			t.Errorf("ivsrt %s: stdout differs from the aws CLI's\n--- ivsrt\n%s\n--- aws\n%s", strings.Join(full, " "), g, w)
		}
		if g, w := normalize(got.stderr), normalize(want.stderr); g != w {
			t.Errorf("ivsrt %s: stderr differs from the aws CLI's\n--- ivsrt\n%q\n--- aws\n%q", strings.Join(full, " "), g, w)
		}
	}
}

// cliListsAll runs a list command of ivsrt (list-encoder-configurations…)
// with page sizes of 1, 2 and 50: ivsrt pages through everything by
// itself, as for the other lists, so each prints the same ARNs, those of
// member (the list in the output, matched as encoding/json matches a
// field's name), and no nextToken. Without the aws CLI, whose runs of
// the test create more, there are want of them.
func cliListsAll(t *testing.T, m *Main, command, member string, want int) {
	t.Helper()
	// field is what out holds under name, matched as encoding/json does.
	field := func(out map[string]json.RawMessage, name string) json.RawMessage {
		for k, v := range out {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return nil
	}
	var all []string
	for _, page := range []string{"1", "2", "50"} {
		out := cliMust(t, m, command, "--page-size", page)
		var (
			listed    map[string]json.RawMessage
			items     []struct{ Arn string }
			nextToken *string
		)
		err := json.Unmarshal([]byte(out), &listed)
		if raw := field(listed, member); err == nil && raw == nil {
			err = fmt.Errorf("no %s", member)
		} else if err == nil {
			err = json.Unmarshal(raw, &items)
		}
		if raw := field(listed, "NextToken"); err == nil && raw != nil {
			err = json.Unmarshal(raw, &nextToken)
		}
		if err != nil {
			t.Fatalf("%s --page-size %s: %v\n%s", command, page, err, out)
		}
		var arns []string
		for _, x := range items {
			arns = append(arns, x.Arn)
		}
		if all == nil {
			all = arns
		}
		if fmt.Sprint(arns) != fmt.Sprint(all) || nextToken != nil {
			t.Errorf("%s --page-size %s: got %v (nextToken %v), want %v and none", command, page, arns, nextToken, all)
		}
	}
	if cliAWSPath() == "" && len(all) != want {
		t.Errorf("%s: got %d, want %d", command, len(all), want)
	}
}

// cliDeletes deletes arn with a delete command of ivsrt, which must print
// nothing, after which get, the resource's Get operation op, must not find
// it.
func cliDeletes(t *testing.T, m *Main, command, arn, op string, get func(ctx context.Context) error) {
	t.Helper()
	if r := cliRun(t, m, command, "--arn", arn); r.code != 0 || r.stdout != "" {
		t.Errorf("%s: exit %d, output %q, want 0 and none", command, r.code, r.stdout)
	}
	if err := get(testContext(t)); err == nil {
		t.Errorf("%s after %s: got it, want ResourceNotFoundException", op, command)
	}
}

// TestCLIMatchesAWSCLI runs every command through ivsrt and the aws CLI
// and compares what they print: JSON, text and table output, service
// errors and the CLI's own validation errors.
func TestCLIMatchesAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs both CLIs some hundred times")
	}
	t.Parallel()
	m, c := startServer(t)
	withTestStorage(t, m)
	if cliAWSPath() == "" {
		t.Log("the aws CLI is not on PATH: checking ivsrt alone")
	}

	// Writes whose output carries new identifiers: made by each CLI, the
	// outputs are the same once the identifiers, tokens and times are set
	// aside, and those are checked for their form.
	volatile := regexp.MustCompile(`stage/[a-zA-Z0-9]{12}|"participantId": "[a-zA-Z0-9]{12}"|eyJ[a-zA-Z0-9_.-]+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z|\t[a-zA-Z0-9]{12}\t`)
	normalize := func(s string) string { return volatile.ReplaceAllString(s, "<volatile>") }
	create := []string{"create-stage", "--name", "cli-compare", "--tags", "env=test,team=video",
		"--participant-token-configurations", "userId=alice,duration=60,capabilities=PUBLISH,attributes={role=host}", "userId=bob"}
	got := cliRun(t, m, create...)
	if got.code != 0 {
		t.Fatalf("ivsrt create-stage: exit %d: %s", got.code, got.stderr)
	}
	for _, pattern := range []string{`"arn": "arn:aws:ivs:us-east-1:123456789012:stage/[a-zA-Z0-9]{12}"`,
		`"participantId": "[a-zA-Z0-9]{12}"`, `"token": "eyJ[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]+"`,
		`"expirationTime": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"`} {
		if !regexp.MustCompile(pattern).MatchString(got.stdout) {
			t.Errorf("create-stage output has nothing like %s:\n%s", pattern, got.stdout)
		}
	}
	if cliAWSPath() != "" {
		want := cliAWS(t, m, append(create, "--output", "json")...)
		if g, w := normalize(got.stdout), normalize(want.stdout); g != w {
			t.Errorf("create-stage: stdout differs from the aws CLI's\n--- ivsrt\n%s\n--- aws\n%s", g, w)
		}
	}
	var created struct {
		Stage struct {
			Arn string `json:"arn"`
		} `json:"stage"`
		ParticipantTokens []struct {
			ParticipantID string `json:"participantId"`
		} `json:"participantTokens"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &created); err != nil || len(created.ParticipantTokens) != 2 {
		t.Fatalf("create-stage output %s: %v", got.stdout, err)
	}
	arn := created.Stage.Arn
	alice, bob := created.ParticipantTokens[0].ParticipantID, created.ParticipantTokens[1].ParticipantID
	// (Tables are as wide as the longest token, which varies.)
	cliCompareOutputs(t, m, []string{"json", "text"}, 0, normalize, "create-participant-token", "--stage-arn", arn, "--user-id", "carol",
		"--attributes", "color=red,seat=3", "--capabilities", "SUBSCRIBE", "--duration", "30")

	// Reads and idempotent writes print the same, byte for byte.
	cliCompare(t, m, 0, nil, "update-stage", "--arn", arn, "--name", "cli-renamed",
		"--auto-participant-recording-configuration",
		"storageConfigurationArn="+storageARN+",mediaTypes=AUDIO_ONLY,thumbnailConfiguration={targetIntervalSeconds=10,storage=[SEQUENTIAL,LATEST]}")
	cliCompare(t, m, 0, nil, "get-stage", "--arn", arn)
	cliCompare(t, m, 0, nil, "get-stage", "--cli-input-json", `{"arn": "`+arn+`"}`)
	createStage(t, c, "cli-other")
	cliCompare(t, m, 0, nil, "list-stages")
	cliCompare(t, m, 0, nil, "tag-resource", "--resource-arn", arn, "--tags", "extra=1,owner=ops")
	cliCompare(t, m, 0, nil, "list-tags-for-resource", "--resource-arn", arn)
	cliCompare(t, m, 0, nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "extra", "owner")

	// A session, recorded as the media plane would.
	stage := ivsrt.StageARN(arn)
	joined := &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(alice), UserID: "alice",
		Attributes: map[string]string{"role": "host"}, Protocol: "WHIP"}
	record(t, m, joined,
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventPublishStarted, ParticipantID: ivsrt.ParticipantID(alice)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(bob), UserID: "bob"},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeStarted, ParticipantID: ivsrt.ParticipantID(bob), RemoteParticipantID: ivsrt.ParticipantID(alice)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventLeft, ParticipantID: ivsrt.ParticipantID(bob)},
	)
	session := string(joined.SessionID)
	cliCompare(t, m, 0, nil, "list-stage-sessions", "--stage-arn", arn)
	cliCompare(t, m, 0, nil, "get-stage-session", "--stage-arn", arn, "--session-id", session)
	cliCompare(t, m, 0, nil, "list-participants", "--stage-arn", arn, "--session-id", session)
	cliCompare(t, m, 0, nil, "list-participants", "--stage-arn", arn, "--session-id", session, "--no-filter-by-published")
	cliCompare(t, m, 0, nil, "get-participant", "--stage-arn", arn, "--session-id", session, "--participant-id", alice)
	cliCompare(t, m, 0, nil, "list-participant-events", "--stage-arn", arn, "--session-id", session, "--participant-id", bob)

	// Errors: the server's, and the CLI's own checks before sending.
	missing := "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD0000"
	cliCompare(t, m, 254, nil, "get-stage", "--arn", missing)
	cliCompare(t, m, 254, nil, "create-stage", "--name", strings.Repeat("x", 129))
	cliCompare(t, m, 254, nil, "list-participants", "--stage-arn", arn, "--session-id", session, "--filter-by-published", "--filter-by-state", "CONNECTED")
	cliCompare(t, m, 252, nil, "get-stage", "--arn", "")
	cliCompare(t, m, 252, nil, "create-participant-token", "--stage-arn", arn, "--duration", "0")
	cliCompare(t, m, 252, nil, "update-stage", "--arn", arn, "--cli-input-json", `{"name": "x", "bogus": 1}`)
	cliCompare(t, m, 252, nil, "update-stage", "--arn", arn, "--auto-participant-recording-configuration", "mediaTypes=AUDIO_ONLY")
	cliCompare(t, m, 252, nil, "create-stage", "--tags", "a=b,c")

	// Participant replication, of a publisher in one stage into another:
	// a start and a stop by each CLI in each output format, what they
	// print from the response headers the output shapes declare; the
	// replicas listed, page by page; and the errors.
	source, dest := createStage(t, c, "cli-vs-source"), createStage(t, c, "cli-vs-destination")
	pubTok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("publisher")})
	pubID := aws.ToString(pubTok.ParticipantId)
	synthPublish(t, "http://"+m.Addr(), aws.ToString(pubTok.Token))
	waitPublishing(t, c, source, pubID)
	replication := []string{"--source-stage-arn", source, "--destination-stage-arn", dest, "--participant-id", pubID}
	for _, output := range []string{"json", "text", "table"} {
		// Each CLI goes through the four steps in turn: a step changes
		// what the next one finds.
		steps := [][]string{
			append([]string{"start-participant-replication", "--reconnect-window-seconds", "5", "--attributes", "team=red"}, replication...),
			append([]string{"start-participant-replication"}, replication...), // exists already
			append([]string{"stop-participant-replication"}, replication...),
			append([]string{"stop-participant-replication"}, replication...), // stopped already
		}
		var got, want []cliResult
		for _, args := range steps {
			got = append(got, cliRun(t, m, append(args, "--output", output)...))
		}
		if cliAWSPath() != "" {
			for _, args := range steps {
				want = append(want, cliAWS(t, m, append(args, "--output", output)...))
			}
		}
		for i, code := range []int{0, 254, 0, 254} {
			if got[i].code != code {
				t.Errorf("replication step %d --output %s: exit %d, want %d: %s", i, output, got[i].code, code, got[i].stderr)
			}
		}
		if got[0].stdout == "" || !strings.Contains(got[0].stdout, "no-store") {
			t.Errorf("start-participant-replication --output %s printed %q, want the response headers", output, got[0].stdout)
		}
		for i := range want {
			if got[i].stdout != want[i].stdout || got[i].stderr != want[i].stderr {
				t.Errorf("replication step %d --output %s differs from the aws CLI's\n--- ivsrt\n%s%s\n--- aws\n%s%s", i, output,
					got[i].stdout, got[i].stderr, want[i].stdout, want[i].stderr)
			}
		}
	}
	cliCompare(t, m, 0, nil, "list-participant-replicas", "--source-stage-arn", source, "--participant-id", pubID)
	cliCompare(t, m, 0, nil, "list-participant-replicas", "--source-stage-arn", source, "--participant-id", pubID, "--max-items", "2")
	cliCompare(t, m, 0, nil, "list-participant-replicas", "--source-stage-arn", source, "--participant-id", pubID, "--page-size", "1")
	cliCompare(t, m, 254, nil, "start-participant-replication", "--source-stage-arn", source, "--destination-stage-arn", source, "--participant-id", pubID)
	cliCompare(t, m, 254, nil, "start-participant-replication", "--source-stage-arn", source, "--destination-stage-arn", dest,
		"--participant-id", pubID, "--reconnect-window-seconds", "301")
	cliCompare(t, m, 254, nil, "list-participant-replicas", "--source-stage-arn", source, "--participant-id", "a_b")
	cliCompare(t, m, 252, nil, "start-participant-replication", "--source-stage-arn", source, "--destination-stage-arn", dest,
		"--participant-id", pubID, "--reconnect-window-seconds", "-1")
	if r := cliRun(t, m, "start-participant-replication", "--source-stage-arn", source, "--destination-stage-arn", dest); r.code != 252 ||
		!strings.HasSuffix(r.stderr, "ivsrt: error: the following arguments are required: --participant-id\n") {
		t.Errorf("start-participant-replication without --participant-id: exit %d, %q", r.code, r.stderr)
	}
	cliCompare(t, m, 255, nil, "list-participant-replicas", "--source-stage-arn", source, "--participant-id", pubID, "--page-size", "0")

	// The last writes print nothing.
	cliCompare(t, m, 0, nil, "disconnect-participant", "--stage-arn", arn, "--participant-id", alice, "--reason", "Removed by the moderator")
	got = cliRun(t, m, "delete-stage", "--arn", arn)
	if got.code != 0 || got.stdout != "" {
		t.Errorf("delete-stage: exit %d, output %q, want 0 and none", got.code, got.stdout)
	}
	if _, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn)}); err == nil {
		t.Errorf("GetStage after delete-stage: got the stage, want ResourceNotFoundException")
	}
}

// TestCLIPagination checks the list commands page through everything by
// themselves, as the aws CLI does for its paginated operations, and the
// --page-size, --max-items, --starting-token and --no-paginate rules.
func TestCLIPagination(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	var arns []string
	for i := range 7 {
		arns = append(arns, createStage(t, c, fmt.Sprintf("page-%d", i)))
	}
	type listed struct {
		Stages []struct {
			Arn string `json:"arn"`
		} `json:"stages"`
		NextToken string `json:"NextToken"`
	}
	list := func(args ...string) listed {
		t.Helper()
		var l listed
		out := cliMust(t, m, append([]string{"list-stages"}, args...)...)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("list-stages %v: %s: %v", args, out, err)
		}
		return l
	}
	arnsOf := func(l listed) []string {
		var out []string
		for _, s := range l.Stages {
			out = append(out, s.Arn)
		}
		return out
	}

	all := list("--page-size", "2")
	checkJSON(t, "list-stages --page-size 2", arnsOf(all), arns)
	if all.NextToken != "" {
		t.Errorf("all pages: NextToken got %q, want none", all.NextToken)
	}
	// The merged pages print as one call for them all would.
	if cliAWSPath() != "" {
		whole := cliAWS(t, m, "list-stages", "--max-results", "100", "--output", "json")
		if got := cliMust(t, m, "list-stages", "--page-size", "2"); got != whole.stdout {
			t.Errorf("list-stages --page-size 2 got\n%s\nwant what aws list-stages --max-results 100 prints\n%s", got, whole.stdout)
		}
	}

	// --max-items stops early with a NextToken to go on from, inside a
	// page or at its end.
	var walked []string
	token := ""
	for pages := 0; ; pages++ {
		args := []string{"--page-size", "2", "--max-items", "3"}
		if token != "" {
			args = append(args, "--starting-token", token)
		}
		l := list(args...)
		walked = append(walked, arnsOf(l)...)
		if l.NextToken == "" {
			break
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
		if _, err := base64.StdEncoding.DecodeString(l.NextToken); err != nil {
			t.Errorf("NextToken %q: %v, want base64 as botocore writes it", l.NextToken, err)
		}
		token = l.NextToken
	}
	checkJSON(t, "list-stages --max-items 3, page after page", walked, arns)

	// The API's own --max-results turns automatic pagination off, and the
	// server's nextToken shows, as with the aws CLI.
	var first struct {
		Stages    []any  `json:"stages"`
		NextToken string `json:"nextToken"`
	}
	if err := json.Unmarshal([]byte(cliMust(t, m, "list-stages", "--max-results", "2")), &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Stages) != 2 || first.NextToken == "" {
		t.Errorf("list-stages --max-results 2: %d stages, nextToken %q, want 2 and a token", len(first.Stages), first.NextToken)
	}
	if cliAWSPath() != "" {
		want := cliAWS(t, m, "list-stages", "--max-results", "2", "--output", "json")
		var w struct {
			Stages []any `json:"stages"`
		}
		json.Unmarshal([]byte(want.stdout), &w)
		checkJSON(t, "list-stages --max-results 2 against the aws CLI", first.Stages, w.Stages)
	}
	if l := list("--no-paginate"); len(l.Stages) != 7 {
		t.Errorf("--no-paginate: %d stages, want the one page of 7", len(l.Stages))
	}
	r := cliRun(t, m, "list-stages", "--no-paginate", "--page-size", "2")
	if r.code != 252 || !strings.Contains(r.stderr, "Cannot specify --no-paginate along with pagination arguments: --starting-token, --page-size, --max-items") &&
		!strings.Contains(r.stderr, "Cannot specify --no-paginate") {
		t.Errorf("--no-paginate --page-size: exit %d, %q, want 252 and the aws CLI's message", r.code, r.stderr)
	}
	// Text output pages as the aws CLI's does: a line per stage.
	text := cliMust(t, m, "list-stages", "--page-size", "3", "--output", "text")
	if n := strings.Count(text, "STAGES\t"); n != 7 {
		t.Errorf("text output: %d STAGES lines, want 7:\n%s", n, text)
	}
}

// TestCLIExitStatus checks how the CLI fails: the message on stderr and
// the exit status, for each kind of failure.
func TestCLIExitStatus(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	bin := cliBinary(t)
	ctx := testContext(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	noCreds := cliEnv("IVSRT_ENDPOINT_URL=http://"+m.Addr(), "IVSRT_DATA="+t.TempDir(), "HOME="+t.TempDir())
	noCreds = slices.DeleteFunc(noCreds, func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") || strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=")
	})
	missing := "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD0000"
	endpoint := "IVSRT_ENDPOINT_URL=http://" + m.Addr()
	for _, tt := range []struct {
		name   string
		env    []string // of its own; else cliEnv and the server's endpoint
		args   []string
		code   int
		stderr string
	}{
		{"service error", nil, []string{"get-stage", "--arn", missing}, 254,
			"\nAn error occurred (ResourceNotFoundException) when calling the GetStage operation: Stage not found: " + missing + "\n"},
		{"missing argument", nil, []string{"get-stage"}, 252, "ivsrt: error: the following arguments are required: --arn\n"},
		{"unknown option", nil, []string{"get-stage", "--arn", missing, "--bogus", "1"}, 252, "ivsrt: error: Unknown options: --bogus, 1\n"},
		{"unknown command", nil, []string{"get-stages"}, 252, "Invalid choice: 'get-stages'"},
		{"client validation", nil, []string{"create-participant-token", "--stage-arn", missing, "--duration", "0"}, 252,
			"\nParameter validation failed:\nInvalid value for parameter duration, value: 0, valid min value: 1\n"},
		{"bad shorthand", nil, []string{"create-stage", "--tags", "a"}, 252, "Error parsing parameter '--tags': Expected: '=', received: 'EOF' for input:\na\n ^\n"},
		{"bad JSON", nil, []string{"create-stage", "--tags", "{a"}, 252, "Error parsing parameter '--tags': Invalid JSON"},
		{"wrong signature", cliEnv(endpoint, "AWS_SECRET_ACCESS_KEY=wrong"), []string{"list-stages"}, 254,
			"when calling the ListStages operation: The request signature we calculated does not match"},
		{"no credentials", noCreds, []string{"list-stages"}, 253, "Unable to locate credentials"},
		{"unknown profile", nil, []string{"list-stages", "--profile", "nope"}, 253, "The config profile (nope) could not be found"},
		{"no server", nil, []string{"list-stages", "--endpoint-url", "http://" + closedAddr}, 255,
			"\nCould not connect to the endpoint URL: \"http://" + closedAddr + "/ListStages\"\n"},
		{"bad output", nil, []string{"list-stages", "--output", "yaml"}, 252, "argument --output: Invalid choice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = cliEnv(endpoint)
			}
			r := cliExec(t, ctx, env, bin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status got %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr got %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout got %q, want nothing", r.stdout)
			}
		})
	}
}

// TestCLIHelp checks every command has help with its flags and an
// example, and that the completion scripts are valid shell.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	bin := cliBinary(t)
	ctx := testContext(t)
	env := cliEnv()
	usage := cliExec(t, ctx, env, bin, "help")
	if usage.code != 0 {
		t.Fatalf("ivsrt help: exit %d", usage.code)
	}
	commands := []string{"create-participant-token", "create-stage", "delete-stage", "disconnect-participant", "get-participant",
		"get-stage", "get-stage-session", "list-participant-events", "list-participants", "list-stage-sessions", "list-stages",
		"list-tags-for-resource", "tag-resource", "untag-resource", "update-stage"}
	for _, cmd := range commands {
		if !strings.Contains(usage.stdout, "  "+cmd+"\n") {
			t.Errorf("ivsrt help does not list %s", cmd)
		}
		for _, form := range [][]string{{cmd, "--help"}, {cmd, "help"}} {
			r := cliExec(t, ctx, env, bin, form...)
			if r.code != 0 || !strings.Contains(r.stdout, "EXAMPLE\n    ivsrt "+cmd) || !strings.Contains(r.stdout, "SYNOPSIS") {
				t.Errorf("ivsrt %s: exit %d, want help with an example:\n%s", strings.Join(form, " "), r.code, r.stdout)
			}
		}
	}
	r := cliExec(t, ctx, env, bin, "create-stage", "--help")
	for _, want := range []string{"--participant-token-configurations (list)", "Shorthand syntax:", "--tags (map)", "JSON syntax:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create-stage --help lacks %q", want)
		}
	}
	r = cliExec(t, ctx, env, bin, "bot", "--help")
	if r.code != 0 || !strings.Contains(r.stderr, "Example:") || !strings.Contains(r.stderr, "-subscribe") {
		t.Errorf("ivsrt bot --help: exit %d\n%s", r.code, r.stderr)
	}
	for _, shell := range []string{"bash", "zsh"} {
		r := cliExec(t, ctx, env, bin, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "create-participant-token") || !strings.Contains(r.stdout, "--participant-token-configurations") {
			t.Errorf("completion %s: exit %d\n%s", shell, r.code, r.stdout)
			continue
		}
		sh, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s is not installed: its completion script is not checked", shell)
			continue
		}
		script := filepath.Join(t.TempDir(), "completion")
		os.WriteFile(script, []byte(r.stdout), 0o644)
		if out, err := exec.CommandContext(ctx, sh, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n of the completion script: %v\n%s", shell, err, out)
		}
	}
	// The bash completion completes commands and flags.
	if _, err := exec.LookPath("bash"); err == nil {
		script := cliExec(t, ctx, env, bin, "completion", "bash").stdout
		check := script + `
COMP_WORDS=(ivsrt create-sta); COMP_CWORD=1; _ivsrt; echo "${COMPREPLY[@]}"
COMP_WORDS=(ivsrt create-stage --ta); COMP_CWORD=2; _ivsrt; echo "${COMPREPLY[@]}"
COMP_WORDS=(ivsrt list-stages --output t); COMP_CWORD=3; _ivsrt; echo "${COMPREPLY[@]}"
`
		out, err := exec.CommandContext(ctx, "bash", "-c", check).CombinedOutput()
		if want := "create-stage\n--tags\ntext table\n"; err != nil || string(out) != want {
			t.Errorf("bash completion got %q (%v), want %q", out, err, want)
		}
	}
}

// TestCLIBots runs two bots with the binary: one publishes, the other
// subscribes to it and receives its frames and audio; ListParticipants
// shows both while they are there.
func TestCLIBots(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: bots stay for seconds")
	}
	t.Parallel()
	m, c := startServer(t)
	arn := createStage(t, c, "cli-bots")
	ctx := testContext(t)
	bin := cliBinary(t)
	env := cliEnv("IVSRT_ENDPOINT_URL=http://" + m.Addr())

	publisher := exec.CommandContext(ctx, bin, "bot", "--stage-arn", arn, "--user-id", "pub", "--duration", "12s", "--output", "json")
	publisher.Env = env
	var pubOut, pubErr bytes.Buffer
	publisher.Stdout, publisher.Stderr = &pubOut, &pubErr
	if err := publisher.Start(); err != nil {
		t.Fatal(err)
	}
	defer publisher.Process.Kill()

	// The subscriber runs while the publisher publishes.
	var sub cliResult
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		sub = cliExec(t, ctx, env, bin, "bot", "--stage-arn", arn, "--user-id", "sub", "--subscribe",
			"--no-video", "--no-audio", "--duration", "6s", "--interval", "500ms", "--output", "json")
	}()

	// Both are participants of the session while they run.
	var session string
	cliEventually(t, "both bots in ListParticipants", func() error {
		st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
		if err != nil {
			return err
		}
		session = aws.ToString(st.Stage.ActiveSessionId)
		if session == "" {
			return fmt.Errorf("no active session")
		}
		out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn), SessionId: aws.String(session)})
		if err != nil {
			return err
		}
		users := map[string]types.ParticipantState{}
		for _, p := range out.Participants {
			users[aws.ToString(p.UserId)] = p.State
			if aws.ToString(p.UserId) == "pub-1" && !p.Published {
				return fmt.Errorf("pub-1 has not published yet")
			}
		}
		if users["pub-1"] != types.ParticipantStateConnected || users["sub-1"] != types.ParticipantStateConnected {
			return fmt.Errorf("participants %v, want pub-1 and sub-1 connected", users)
		}
		return nil
	})
	// The CLI shows the same.
	listed := cliMust(t, m, "list-participants", "--stage-arn", arn, "--session-id", session, "--output", "text")
	for _, user := range []string{"pub-1", "sub-1"} {
		if !regexp.MustCompile(`(?m)^PARTICIPANTS\t.*\tCONNECTED\t` + user + `$`).MatchString(listed) {
			t.Errorf("list-participants --output text does not show %s connected:\n%s", user, listed)
		}
	}

	<-subDone
	if sub.code != 0 {
		t.Fatalf("subscriber bot: exit %d\n%s\n%s", sub.code, sub.stdout, sub.stderr)
	}
	lines := strings.Split(strings.TrimSpace(sub.stdout), "\n")
	var final struct {
		Final bool `json:"final"`
		Bots  []struct {
			State    string `json:"state"`
			Received []struct {
				ParticipantID string  `json:"participantId"`
				UserID        string  `json:"userId"`
				VideoCodec    string  `json:"videoCodec"`
				AudioCodec    string  `json:"audioCodec"`
				VideoFrames   int     `json:"videoFrames"`
				Keyframes     int     `json:"keyframes"`
				AudioPackets  int     `json:"audioPackets"`
				VideoBitrate  float64 `json:"videoBitrate"`
			} `json:"received"`
		} `json:"bots"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || !final.Final || len(final.Bots) != 1 {
		t.Fatalf("subscriber's last line %q: %v, want the final stats of one bot", lines[len(lines)-1], err)
	}
	if len(lines) < 4 {
		t.Errorf("subscriber printed %d lines of stats in 6 s every 500 ms, want more", len(lines))
	}
	got := final.Bots[0]
	if len(got.Received) != 1 {
		t.Fatalf("subscriber received from %d publishers, want 1: %s", len(got.Received), lines[len(lines)-1])
	}
	r := got.Received[0]
	t.Logf("subscriber received %+v", r)
	if r.UserID != "pub-1" || r.VideoCodec != "video/VP8" || r.AudioCodec != "audio/opus" {
		t.Errorf("received from %q %q %q, want pub-1 with video/VP8 and audio/opus", r.UserID, r.VideoCodec, r.AudioCodec)
	}
	// About four seconds of 30 frames and 50 audio packets a second, at the
	// least; every frame is a key frame.
	if r.VideoFrames < 60 || r.Keyframes < r.VideoFrames-1 || r.AudioPackets < 100 || r.VideoBitrate <= 0 {
		t.Errorf("received %d frames (%d keyframes), %d audio packets, %.0f b/s, want seconds of media",
			r.VideoFrames, r.Keyframes, r.AudioPackets, r.VideoBitrate)
	}

	if err := publisher.Wait(); err != nil {
		t.Fatalf("publisher bot: %v\n%s", err, pubErr.String())
	}
	pubLines := strings.Split(strings.TrimSpace(pubOut.String()), "\n")
	var pubFinal struct {
		Bots []struct {
			State string `json:"state"`
			Sent  struct {
				VideoFrames  int `json:"videoFrames"`
				AudioPackets int `json:"audioPackets"`
			} `json:"sent"`
		} `json:"bots"`
	}
	json.Unmarshal([]byte(pubLines[len(pubLines)-1]), &pubFinal)
	if len(pubFinal.Bots) != 1 || pubFinal.Bots[0].State != "LEFT" || pubFinal.Bots[0].Sent.VideoFrames < 200 {
		t.Errorf("publisher's final stats %s, want a bot that left after some 12 s of frames", pubLines[len(pubLines)-1])
	}
	// Once gone, both are disconnected.
	cliEventually(t, "both bots disconnected", func() error {
		out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn), SessionId: aws.String(session),
			FilterByState: types.ParticipantStateDisconnected})
		if err != nil {
			return err
		}
		if len(out.Participants) != 2 {
			return fmt.Errorf("%d disconnected", len(out.Participants))
		}
		return nil
	})
}

// cliEventually retries f until it returns nil or 30 seconds pass.
func cliEventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLIBotInBrowser checks that what a bot sends is real media: headless
// Chromium joins the stage on the join page and plays the bot's video,
// whose pixels are the test pattern's colour bars, and its audio, whose
// level is the tone's.
func TestCLIBotInBrowser(t *testing.T) {
	m, c := startServer(t)
	b := webtest.NewBrowser(t)
	arn := createStage(t, c, "bot-browser")
	ctx := testContext(t)

	botToken := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("bot")})
	pub, err := bot.New(bot.Config{Token: aws.ToString(botToken.Token), Video: true, Audio: true, HTTPClient: localHTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	botCtx, stopBot := context.WithCancel(ctx)
	botDone := make(chan error, 1)
	go func() { botDone <- pub.Run(botCtx) }()
	defer func() {
		stopBot()
		if err := <-botDone; err != nil {
			t.Errorf("bot: %v", err)
		}
	}()

	viewer := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("viewer")})
	tab := b.NewTab("viewer")
	tab.Navigate("http://" + m.Addr() + "/join?token=" + url.QueryEscape(aws.ToString(viewer.Token)))
	botID := pub.ParticipantID()
	browserCheckVideo(t, tab, botID)

	video := browserTile(botID) + `.querySelector("video")`
	type pixels struct {
		Width  int     `json:"width"`
		Height int     `json:"height"`
		Bars   [][]int `json:"bars"`
		Level  float64 `json:"level"`
	}
	got := webtest.Eval[pixels](tab, `(async () => {
		const v = `+video+`;
		const c = document.createElement("canvas");
		c.width = v.videoWidth; c.height = v.videoHeight;
		const g = c.getContext("2d");
		g.drawImage(v, 0, 0);
		const bars = [];
		for (let i = 0; i < 8; i++) {
			const d = g.getImageData(i * c.width / 8 + c.width / 16, c.height / 3, 1, 1).data;
			bars.push([d[0], d[1], d[2]]);
		}
		// The audio: the loudest sample over half a second.
		const ac = new AudioContext();
		await ac.resume();
		const src = ac.createMediaStreamSource(new MediaStream(v.srcObject.getAudioTracks()));
		const an = ac.createAnalyser();
		an.fftSize = 2048;
		src.connect(an);
		const buf = new Float32Array(an.fftSize);
		let level = 0;
		for (let i = 0; i < 25; i++) {
			await new Promise((r) => setTimeout(r, 20));
			an.getFloatTimeDomainData(buf);
			for (const s of buf) level = Math.max(level, Math.abs(s));
		}
		ac.close();
		return { width: c.width, height: c.height, bars, level };
	})()`)
	t.Logf("bot video %dx%d, bars %v, audio peak %.3f", got.Width, got.Height, got.Bars, got.Level)
	if got.Width != 320 || got.Height != 240 {
		t.Errorf("video size %dx%d, want 320x240", got.Width, got.Height)
	}
	want := [][]int{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}, {16, 16, 16}}
	for i, w := range want {
		if len(got.Bars) <= i {
			break
		}
		for k := range 3 {
			if d := got.Bars[i][k] - w[k]; d < -12 || d > 12 {
				t.Errorf("bar %d: colour %v, want about %v", i, got.Bars[i], w)
				break
			}
		}
	}
	if got.Level < 0.05 {
		t.Errorf("audio peak %.3f, want the tone (about 0.1 to 0.35)", got.Level)
	}
}

// TestCLIIngestConfigurations: the ingest configuration commands print
// what the aws CLI prints; a redundant ingest the CLI cannot send is
// refused rather than dropped.
func TestCLIIngestConfigurations(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	stage := createStage(t, c, "cli-ingest")
	out := cliMust(t, m, "create-ingest-configuration", "--stage-arn", stage, "--ingest-protocol", "RTMPS",
		"--user-id", "obs", "--attributes", "role=camera", "--name", "camera-1")
	var created struct {
		IngestConfiguration struct {
			Arn       string `json:"arn"`
			StreamKey string `json:"streamKey"`
			State     string `json:"state"`
		} `json:"ingestConfiguration"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create-ingest-configuration output %s: %v", out, err)
	}
	ic := created.IngestConfiguration
	if !strings.HasPrefix(ic.StreamKey, "rt_123456789012_us-east-1_") || ic.State != "INACTIVE" {
		t.Errorf("create-ingest-configuration: got %+v", ic)
	}
	cliCompare(t, m, 0, nil, "get-ingest-configuration", "--arn", ic.Arn)
	cliCompare(t, m, 0, nil, "list-ingest-configurations")
	cliCompare(t, m, 0, nil, "list-ingest-configurations", "--filter-by-state", "INACTIVE")
	cliCompare(t, m, 0, nil, "update-ingest-configuration", "--arn", ic.Arn, "--stage-arn", stage)
	if r := cliRun(t, m, "create-ingest-configuration", "--ingest-protocol", "RTMPS", "--redundant-ingest"); r.code == 0 ||
		!strings.Contains(r.stderr, "--redundant-ingest") {
		t.Errorf("--redundant-ingest: exit %d, %s; want a refusal naming it", r.code, r.stderr)
	}
	cliCompare(t, m, 254, nil, "create-ingest-configuration", "--ingest-protocol", "RTMP")
	// (A delete cannot be made twice: ivsrt's alone.)
	if out := cliMust(t, m, "delete-ingest-configuration", "--arn", ic.Arn); out != "" {
		t.Errorf("delete-ingest-configuration printed %q, want nothing", out)
	}
	cliCompare(t, m, 254, nil, "get-ingest-configuration", "--arn", ic.Arn)
	cliCompare(t, m, 254, nil, "delete-ingest-configuration", "--arn", ic.Arn)
}

// TestCLICompositions: start-composition, get-composition,
// list-compositions and stop-composition print as the aws CLI does. The
// composition's one destination is a channel the server does not map, so
// that it fails at once and prints the same for both CLIs.
func TestCLICompositions(t *testing.T) {
	t.Parallel()
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	stage := createStage(t, c, "cli-compositions")
	channel := "arn:aws:ivs:us-east-1:123456789012:channel/notMapped123"
	out := cliMust(t, m, "start-composition", "--stage-arn", stage,
		"--destinations", `[{"name":"live","channel":{"channelArn":"`+channel+`"}}]`, "--layout", `{"pip":{"pipPosition":"TOP_LEFT"}}`)
	var started struct {
		Composition struct {
			Arn    string `json:"arn"`
			Layout struct {
				Pip struct {
					PipPosition string `json:"pipPosition"`
				} `json:"pip"`
			} `json:"layout"`
		} `json:"composition"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatalf("start-composition output %s: %v", out, err)
	}
	arn := started.Composition.Arn
	if !strings.Contains(arn, ":composition/") || started.Composition.Layout.Pip.PipPosition != "TOP_LEFT" {
		t.Errorf("start-composition: %s", out)
	}
	eventually(t, 20*time.Second, "the composition failed", func() error {
		got, err := c.GetComposition(testContext(t), &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			return err
		}
		if got.Composition.State != types.CompositionStateFailed {
			return fmt.Errorf("state %s", got.Composition.State)
		}
		return nil
	})
	cliCompare(t, m, 0, nil, "get-composition", "--arn", arn)
	cliCompare(t, m, 0, nil, "list-compositions", "--filter-by-stage-arn", stage)
	cliCompare(t, m, 0, nil, "stop-composition", "--arn", arn)
	cliCompare(t, m, 254, nil, "get-composition", "--arn", strings.Replace(arn, ":composition/", ":composition/x", 1))
	cliCompare(t, m, 252, nil, "start-composition", "--stage-arn", stage, "--destinations", "[]")
}
