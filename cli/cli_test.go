package cli

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestXformName(t *testing.T) {
	for in, want := range map[string]string{
		"participantTokenConfigurations":        "participant-token-configurations",
		"arn":                                   "arn",
		"filterByUserId":                        "filter-by-user-id",
		"GetStage":                              "get-stage",
		"ListTagsForResource":                   "list-tags-for-resource",
		"autoParticipantRecordingConfiguration": "auto-participant-recording-configuration",
		"ListStorageConfigurations":             "list-storage-configurations",
		"ImportPublicKey":                       "import-public-key",
	} {
		if got := xformName(in); got != want {
			t.Errorf("xformName(%q) got %v, want %v", in, got, want)
		}
	}
}

// TestShorthand checks the shorthand parser against what the aws CLI's
// parses the same input to.
func TestShorthand(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a=b", `{"a":"b"}`},
		{"a=b,c=d", `{"a":"b","c":"d"}`},
		{"a=b,c", `{"a":["b","c"]}`},
		{"a=b,c,d=e", `{"a":["b","c"],"d":"e"}`},
		{"a=[b,c]", `{"a":["b","c"]}`},
		{"a={b=c,d=[e]}", `{"a":{"b":"c","d":["e"]}}`},
		{"a=", `{"a":""}`},
		{`a='x,y',b="p=q"`, `{"a":"x,y","b":"p=q"}`},
		{`a=x\,y`, `{"a":"x,y"}`},
		{"a = b , c = d", `{"a":"b","c":"d"}`},
		{"userId=bob,duration=60,capabilities=PUBLISH", `{"userId":"bob","duration":"60","capabilities":"PUBLISH"}`},
	} {
		got, err := parseShorthand(tt.in)
		if err != nil {
			t.Errorf("parseShorthand(%q): %v", tt.in, err)
			continue
		}
		b, _ := got.MarshalJSON()
		if string(b) != tt.want {
			t.Errorf("parseShorthand(%q) got %s, want %s", tt.in, b, tt.want)
		}
	}
	for _, in := range []string{"a", "a=b,", "a=b,a=c", "a={b=c", "a=[b"} {
		if _, err := parseShorthand(in); err == nil {
			t.Errorf("parseShorthand(%q): no error, want one", in)
		}
	}
}

func FuzzShorthand(f *testing.F) {
	for _, s := range []string{"a=b,c=d", "a={b=[c,d]}", `a='x',b="y"`, "a=b,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseShorthand(s) // no panic
	})
}

// TestUnpackArg checks flag values become the model's types: shorthand,
// JSON, lists of one, numbers and booleans.
func TestUnpackArg(t *testing.T) {
	op := operationByCommand("create-stage")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tags", "a=1,b=2"}, `{"tags":{"a":"1","b":"2"}}`},
		{[]string{"--tags", `{"a": "1"}`}, `{"tags":{"a":"1"}}`},
		{[]string{"--participant-token-configurations", "userId=bob,duration=60", "userId=alice,capabilities=PUBLISH"},
			`{"participantTokenConfigurations":[{"userId":"bob","duration":60},{"userId":"alice","capabilities":["PUBLISH"]}]}`},
		{[]string{"--participant-token-configurations", `[{"userId": "bob", "capabilities": ["PUBLISH", "SUBSCRIBE"]}]`},
			`{"participantTokenConfigurations":[{"userId":"bob","capabilities":["PUBLISH","SUBSCRIBE"]}]}`},
		{[]string{"--auto-participant-recording-configuration", "storageConfigurationArn=x,recordParticipantReplicas=true,thumbnailConfiguration={targetIntervalSeconds=10}"},
			`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"x","recordParticipantReplicas":true,"thumbnailConfiguration":{"targetIntervalSeconds":10}}}`},
		{[]string{"--name", "demo", "--cli-input-json", `{"name": "ignored", "tags": {"k": "v"}}`}, `{"name":"demo","tags":{"k":"v"}}`},
	} {
		ca, err := parseCommandArgs(op, tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		b, _ := ca.input.MarshalJSON()
		if string(b) != tt.want {
			t.Errorf("%v got %s, want %s", tt.args, b, tt.want)
		}
	}
	sc := operationByCommand("create-storage-configuration")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--s3", "bucketName=bkt", "--name", "n"}, `{"name":"n","s3":{"bucketName":"bkt"}}`},
		{[]string{"--name", "n", "--s3", `{"bucketName": "my.bucket"}`, "--tags", "env=prod"}, `{"name":"n","s3":{"bucketName":"my.bucket"},"tags":{"env":"prod"}}`},
	} {
		ca, err := parseCommandArgs(sc, tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if b, _ := ca.input.MarshalJSON(); string(b) != tt.want {
			t.Errorf("create-storage-configuration %v got %s, want %s", tt.args, b, tt.want)
		}
	}
	ik := operationByCommand("import-public-key")
	const pemText = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----\n"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--public-key-material", pemText, "--name", "signer"},
			`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----\n","name":"signer"}`},
		{[]string{"--name", "k", "--public-key-material", "x", "--tags", "env=prod,team=video"},
			`{"publicKeyMaterial":"x","name":"k","tags":{"env":"prod","team":"video"}}`},
	} {
		ca, err := parseCommandArgs(ik, tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if b, _ := ca.input.MarshalJSON(); string(b) != tt.want {
			t.Errorf("import-public-key %v got %s, want %s", tt.args, b, tt.want)
		}
	}
	ec := operationByCommand("create-encoder-configuration")
	for _, tt := range []struct {
		args []string
		want string
	}{
		// Floats become Python floats, as the aws CLI's float() makes them.
		{[]string{"--video", "width=1920,height=1080,framerate=30,bitrate=6000000"},
			`{"video":{"width":1920,"height":1080,"framerate":30.0,"bitrate":6000000}}`},
		{[]string{"--video", "framerate=29.97", "--name", "ntsc"}, `{"name":"ntsc","video":{"framerate":29.97}}`},
		{[]string{"--video", `{"framerate": 25, "width": 640}`}, `{"video":{"framerate":25,"width":640}}`},
		{[]string{"--video", "framerate= 6e1 "}, `{"video":{"framerate":60.0}}`},
	} {
		ca, err := parseCommandArgs(ec, tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if b, _ := ca.input.MarshalJSON(); string(b) != tt.want {
			t.Errorf("create-encoder-configuration %v got %s, want %s", tt.args, b, tt.want)
		}
	}
	lk := operationByCommand("list-public-keys")
	ca, err := parseCommandArgs(lk, []string{"--page-size", "2", "--max-items", "3"})
	if err != nil || ca.page.manual {
		t.Errorf("list-public-keys --page-size 2 --max-items 3: got %v (manual paging %v), want paging by the CLI", err, ca != nil && ca.page.manual)
	}
	lp := operationByCommand("list-participants")
	ca, err = parseCommandArgs(lp, []string{"--stage-arn", "a", "--session-id", "st-1234567890123", "--no-filter-by-published", "--max-results", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := ca.input.MarshalJSON(); string(b) != `{"stageArn":"a","sessionId":"st-1234567890123","filterByPublished":false,"maxResults":5}` || !ca.page.manual {
		t.Errorf("list-participants got %s (manual paging %v)", b, ca.page.manual)
	}
}

// TestValidate checks the messages of the checks made before sending, as
// botocore words them.
func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"get-stage", []string{"--arn", ""}, "Parameter validation failed:\nInvalid length for parameter arn, value: 0, valid min length: 1"},
		{"get-stage", nil, "the following arguments are required: --arn"},
		{"get-stage", []string{"--cli-input-json", "{}"}, `Missing required parameter in input: "arn"`},
		{"get-stage", []string{"--cli-input-json", `{"arn": "x", "nope": 1}`}, `Unknown parameter in input: "nope", must be one of: arn`},
		{"create-participant-token", []string{"--stage-arn", "x", "--duration", "0"}, "Invalid value for parameter duration, value: 0, valid min value: 1"},
		{"create-stage", []string{"--tags", "a=b,c"}, "Invalid type for parameter tags.a, value: ['b', 'c'], type: <class 'list'>, valid types: <class 'str'>"},
		{"create-stage", []string{"--participant-token-configurations", "userId=a,bogus=1"}, `Unknown parameter in participantTokenConfigurations[0]: "bogus", must be one of: duration, userId, attributes, capabilities`},
		{"create-stage", []string{"--bogus"}, "Unknown options: --bogus"},
		{"list-stages", []string{"--max-results", "2", "--page-size", "2"}, "Cannot specify --no-paginate along with pagination arguments: --page-size"},
		{"create-storage-configuration", []string{"--name", "n"}, "the following arguments are required: --s3"},
		{"create-storage-configuration", []string{"--s3", "bucketName=ab"}, "Invalid length for parameter s3.bucketName, value: 2, valid min length: 3"},
		{"create-storage-configuration", []string{"--s3", "bucket=b"}, `Unknown parameter in s3: "bucket", must be one of: bucketName`},
		{"get-storage-configuration", []string{"--arn", ""}, "Invalid length for parameter arn, value: 0, valid min length: 1"},
		{"delete-storage-configuration", nil, "the following arguments are required: --arn"},
		{"list-storage-configurations", []string{"--max-results", "0"}, "Invalid value for parameter maxResults, value: 0, valid min value: 1"},
		{"import-public-key", []string{"--name", "n"}, "the following arguments are required: --public-key-material"},
		{"import-public-key", []string{"--public-key-material", "x", "--bogus"}, "Unknown options: --bogus"},
		{"get-public-key", []string{"--arn", ""}, "Invalid length for parameter arn, value: 0, valid min length: 1"},
		{"delete-public-key", nil, "the following arguments are required: --arn"},
		{"list-public-keys", []string{"--max-results", "0"}, "Invalid value for parameter maxResults, value: 0, valid min value: 1"},
		{"list-public-keys", []string{"--max-results", "2", "--page-size", "2"}, "Cannot specify --no-paginate along with pagination arguments: --page-size"},
		{"create-encoder-configuration", []string{"--video", "width=0,framerate=0"},
			"Invalid value for parameter video.width, value: 0, valid min value: 2\nInvalid value for parameter video.framerate, value: 0.0, valid min value: 1"},
		{"create-encoder-configuration", []string{"--cli-input-json", `{"video": {"framerate": 0}}`}, "Invalid value for parameter video.framerate, value: 0, valid min value: 1"},
		{"create-encoder-configuration", []string{"--cli-input-json", `{"video": {"framerate": "30"}}`},
			"Invalid type for parameter video.framerate, value: 30, type: <class 'str'>, valid types: <class 'float'>, <class 'decimal.Decimal'>, <class 'int'>"},
		{"create-encoder-configuration", []string{"--video", "framerate=abc"}, "could not convert string to float: 'abc'"},
		{"create-encoder-configuration", []string{"--video", "framerate=nan"}, "nan is not a finite number"},
		{"create-encoder-configuration", []string{"--video", "width=1.5"}, "invalid literal for int() with base 10: '1.5'"},
		{"get-encoder-configuration", []string{"--arn", ""}, "Invalid length for parameter arn, value: 0, valid min length: 1"},
		{"delete-encoder-configuration", nil, "the following arguments are required: --arn"},
		{"list-encoder-configurations", []string{"--max-results", "0"}, "Invalid value for parameter maxResults, value: 0, valid min value: 1"},
	} {
		_, err := parseCommandArgs(operationByCommand(tt.cmd), tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: got %v, want %q", tt.cmd, tt.args, err, tt.want)
		}
	}
}

// TestPyFloat checks floats print as Python's repr() prints them (the
// wanted texts are Python 3's).
func TestPyFloat(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"30", "30.0"}, {"29.97", "29.97"}, {"0", "0.0"}, {"-0", "-0.0"}, {"1e-5", "1e-05"}, {"0.0001", "0.0001"},
		{"1e16", "1e+16"}, {"1e15", "1000000000000000.0"}, {"123456789012345678", "1.2345678901234568e+17"}, {"0.1", "0.1"},
		{"1.5e-7", "1.5e-07"}, {"60.000001", "60.000001"}, {"59.940000000000001", "59.94"}, {"1e400", "inf"}, {"-2.5", "-2.5"},
		{"100.0", "100.0"}, {"1E2", "100.0"}, {"8500000", "8500000.0"},
	} {
		f, err := parsePyFloat(tt.in)
		if err != nil {
			t.Errorf("parsePyFloat(%q): %v", tt.in, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("repr of float(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := parsePyFloat("abc"); err == nil {
		t.Errorf("parsePyFloat(abc): no error")
	}
	var b bytes.Buffer
	writePythonJSON(&b, skeleton(shapeOf("Video"), 0), 0)
	if want := "{\n    \"width\": 0,\n    \"height\": 0,\n    \"framerate\": 0.0,\n    \"bitrate\": 0\n}"; b.String() != want {
		t.Errorf("skeleton of a Video: got %s, want %s", b.String(), want)
	}
}

func TestResumeToken(t *testing.T) {
	next := "abc"
	for _, tt := range []struct {
		next      *string
		trunc     int
		truncated bool
		want      string
	}{
		{&next, 2, true, `{"nextToken": "abc", "boto_truncate_amount": 2}`},
		{nil, 1, true, `{"nextToken": null, "boto_truncate_amount": 1}`},
		{&next, 0, false, `{"nextToken": "abc"}`},
	} {
		tok := encodeResumeToken(tt.next, tt.trunc, tt.truncated)
		raw, _ := base64.StdEncoding.DecodeString(tok)
		if string(raw) != tt.want {
			t.Errorf("token %s, want %s", raw, tt.want)
		}
		got, index, err := parseStartingToken(tok)
		if err != nil || index != tt.trunc || (got == nil) != (tt.next == nil) || got != nil && *got != *tt.next {
			t.Errorf("parseStartingToken(%s) got %v %d %v", raw, got, index, err)
		}
	}
	if got, index, _ := parseStartingToken("serverToken___3"); *got != "serverToken" || index != 3 {
		t.Errorf("old form: got %v %d", *got, index)
	}
	if got, index, _ := parseStartingToken("AAAA_-x"); *got != "AAAA_-x" || index != 0 {
		t.Errorf("bare token: got %v %d", *got, index)
	}
}

// goldenResponses are responses as the server sends them, keys in its
// order, to print in every format.
var goldenResponses = []struct{ name, op, body string }{
	{"get-stage", "GetStage", `{"stage":{"activeSessionId":"st-AbCdEfGhIjKlM","arn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234",
		"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234",
		"mediaTypes":["AUDIO_VIDEO"],"thumbnailConfiguration":{"targetIntervalSeconds":60,"storage":["SEQUENTIAL"],"recordingMode":"INTERVAL"},
		"recordingReconnectWindowSeconds":0,"hlsConfiguration":{"targetSegmentDurationSeconds":6},"recordParticipantReplicas":false},
		"endpoints":{"events":"ws://127.0.0.1:7870/events","whip":"http://127.0.0.1:7870/whip"},"name":"demo","tags":{"env":"dev","team":"video"},"unknownField":1}}`},
	{"list-participants", "ListParticipants", `{"participants":[
		{"participantId":"Ab3dE5gH7jK9","userId":"alice","state":"CONNECTED","firstJoinTime":"2026-11-24T10:00:00.123Z","published":true,"recordingState":"DISABLED"},
		{"participantId":"Zy9xW8vU7tS6","userId":"bob","state":"DISCONNECTED","firstJoinTime":"2026-11-24T10:00:05Z","published":false,"recordingState":"DISABLED"}]}`},
	{"create-participant-token", "CreateParticipantToken", `{"participantToken":{"participantId":"Ab3dE5gH7jK9","token":"eyJhbGciOiJFUzM4NCJ9.eyJqdGkiOiJBYjNkRTVnSDdqSzkifQ.c2ln",
		"userId":"alice","attributes":{"role":"host","seat":"3"},"duration":60,"capabilities":["PUBLISH","SUBSCRIBE"],"expirationTime":"2026-11-24T11:00:00Z"}}`},
	{"list-tags-for-resource", "ListTagsForResource", `{"tags":{}}`},
	{"create-storage-configuration", "CreateStorageConfiguration", `{"storageConfiguration":{"arn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234",
		"name":"recordings","s3":{"bucketName":"my-recordings"},"tags":{"env":"prod","team":"video"}}}`},
	{"list-storage-configurations", "ListStorageConfigurations", `{"storageConfigurations":[
		{"arn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234","name":"recordings","s3":{"bucketName":"my-recordings"},"tags":{"env":"prod"}},
		{"arn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/ZyxwZYXW9876","name":"","s3":{"bucketName":"other.bucket"},"tags":{}}],
		"nextToken":"AQEyNjk"}`},
	{"import-public-key", "ImportPublicKey", `{"publicKey":{"arn":"arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCD1234","name":"signer",
		"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEdE6P/oALXr3eT+nU2NP/tc5O3l1jD+QF\ndVxH37p4wJMXxFhfcbljuIQSmco3JAOXICcW+RtvkSEUgIKozqX0WmztgpnsPMsw\n3EBxGkMT6z746Gc7nqIuQByPxWk+SrFL\n-----END PUBLIC KEY-----\n",
		"fingerprint":"92:ee:7b:c3:f5:f8:bd:dd:25:3d:57:30:87:6c:bb:19","tags":{"env":"prod"}}}`},
	{"list-public-keys", "ListPublicKeys", `{"publicKeys":[
		{"arn":"arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCD1234","name":"signer","tags":{"env":"prod"}},
		{"arn":"arn:aws:ivs:us-east-1:123456789012:public-key/ZyxwZYXW9876","name":"","tags":{}}],
		"nextToken":"AQEyNjk"}`},
	{"create-encoder-configuration", "CreateEncoderConfiguration", `{"encoderConfiguration":{"arn":"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234",
		"name":"ntsc","video":{"width":1920,"height":1080,"framerate":29.97,"bitrate":6000000},"tags":{"env":"prod"}}}`},
	{"get-encoder-configuration", "GetEncoderConfiguration", `{"encoderConfiguration":{"arn":"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234",
		"name":"","video":{"width":1280,"height":720,"framerate":30,"bitrate":2500000},"tags":{}}}`},
	{"list-encoder-configurations", "ListEncoderConfigurations", `{"encoderConfigurations":[
		{"arn":"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234","name":"ntsc","tags":{"env":"prod"}},
		{"arn":"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/ZyxwZYXW9876","name":"","tags":{}}],
		"nextToken":"AQEyNjk"}`},
	{"delete-stage", "DeleteStage", `{}`},
}

// TestOutputGolden prints responses as json, text and table and compares
// them with testdata/*.golden (-update rewrites them). The files were
// checked against the aws CLI's output for the same responses.
func TestOutputGolden(t *testing.T) {
	for _, g := range goldenResponses {
		t.Run(g.name, func(t *testing.T) {
			op := operationByCommand(g.name)
			raw, err := decodeJSON([]byte(g.body))
			if err != nil {
				t.Fatal(err)
			}
			v := shapeOutput(shapeOf(op.Output), raw)
			var b bytes.Buffer
			b.WriteString("### json\n")
			writeJSON(&b, v)
			b.WriteString("### text\n")
			writeText(&b, v)
			b.WriteString("### table, 80 columns\n")
			writeTable(&b, op.Name, v, 80, false)
			b.WriteString("### table, 200 columns\n")
			writeTable(&b, op.Name, v, 200, false)
			path := filepath.Join("testdata", g.name+".golden")
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cli -run TestOutputGolden -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

// TestOutputGoldenMatchesAWSCLI prints the golden responses with the aws
// CLI's own formatters (awscli and botocore, when python3 has them) and
// checks the golden files hold exactly that.
func TestOutputGoldenMatchesAWSCLI(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	if exec.Command(python, "-c", "import awscli, botocore").Run() != nil {
		t.Skip("the aws CLI's python packages are not installed")
	}
	out, err := exec.Command(python, "-c", awsFormatScript).CombinedOutput()
	if err != nil {
		t.Errorf("the aws CLI prints the golden responses differently: %v\n%s", err, out)
	}
}

// awsFormatScript formats goldenResponses with the aws CLI (version 1).
const awsFormatScript = `import sys, io, re, json, botocore.session, botocore.parsers
from awscli import formatter, table as awstable
from argparse import Namespace
s = botocore.session.get_session()
model = s.get_service_model('ivs-realtime')
src = open('cli_test.go').read()
block = src[src.index('var goldenResponses'):src.index('// TestOutputGolden')]
items = re.findall(r'\{"([a-z-]+)", "([A-Za-z]+)", ` + "`" + `(.*?)` + "`" + `\}', block, re.S)
ok = True
for name, op, body in items:
    factory = botocore.parsers.ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=lambda x: x)
    parser = factory.create_parser('rest-json')
    shape = model.operation_model(op).output_shape
    parsed = parser.parse({'body': body.encode(), 'headers': {}, 'status_code': 200}, shape)
    parsed.pop('ResponseMetadata', None)
    out = io.StringIO()
    args = Namespace(query=None, color='off')
    out.write("### json\n"); formatter.JSONFormatter(args)(op, parsed, out)
    out.write("### text\n"); formatter.TextFormatter(args)(op, parsed, out)
    for w in (80, 200):
        out.write("### table, %d columns\n" % w)
        awstable.determine_terminal_width = lambda default_width=80, w=w: w
        f = formatter.TableFormatter(args)
        f(op, parsed, out)
    golden = open('testdata/%s.golden' % name).read()
    if golden != out.getvalue():
        ok = False
        print("DIFF", name)
        import difflib
        print("".join(difflib.unified_diff(golden.splitlines(True), out.getvalue().splitlines(True), 'golden', 'aws'))[:3000])
    else:
        print("same", name)
sys.exit(0 if ok else 1)
`
