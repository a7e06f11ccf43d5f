package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/turnrelay"
)

// clearEnv unsets every IVSRT_* variable for the test, so that the
// caller's shell does not leak into what a test expects.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "IVSRT_") {
			t.Setenv(name, "") // restored when the test ends
			os.Unsetenv(name)
		}
	}
}

// writeConfigFile writes a configuration file named ivsrt.toml in a
// temporary folder and returns its path.
func writeConfigFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ivsrt.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parse runs ParseFlags on a new Main with file (if not empty) as the
// configuration file, env set, and args.
func parse(t *testing.T, file string, env map[string]string, args ...string) (*Main, error) {
	t.Helper()
	clearEnv(t)
	for name, value := range env {
		t.Setenv(name, value)
	}
	if file != "" {
		args = append([]string{"--config", writeConfigFile(t, file)}, args...)
	}
	m := NewMain()
	return m, m.ParseFlags(args)
}

// TestConfigDefaults: NewMain's defaults, now taken from the table, are
// the ones the server always had.
func TestConfigDefaults(t *testing.T) {
	got := NewMain().Config
	want := Config{
		Listen: "127.0.0.1:7870", DataDir: "./ivsrt-data", Region: "us-east-1", AccountID: "123456789012",
		LogLevel: "info", RTCUDPPort: defaultRTCPort, RTCTCPPort: defaultRTCPort,
		EventRetryFor: events.DefaultRetryFor, EventRetention: events.DefaultRetention,
		ClusterLeaseTTL: cluster.DefaultLeaseTTL, ClusterHeartbeat: cluster.DefaultHeartbeatInterval,
		ClusterDeadAfter: cluster.DefaultDeadAfter, DrainTimeout: DefaultDrainTimeout,
		MaxReplicas: ivsrt.DefaultMaxReplicasPerParticipant, MaxSubscribers: sfu.DefaultMaxSubscribers,
		TURNUDPPort: defaultTURNPort, TURNTLSPort: -1, TURNMaxAllocations: turnrelay.DefaultMaxAllocations,
		RTMPPort: defaultRTMPPort, RTMPSPort: -1, MaxCompositions: defaultMaxCompositions,
		RTCBandwidthEstimation: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v,\nwant %+v", got, want)
	}
}

// TestConfigPrecedence layers a default, the file, the environment and the
// flags on one setting at a time: each layer wins over the ones below.
func TestConfigPrecedence(t *testing.T) {
	type layers struct {
		file string            // the setting's line in ivsrt.toml
		env  map[string]string // its variable
		args []string          // its flags
	}
	tests := []struct {
		name  string
		get   func(c *Config) any
		given layers
		want  [4]any // with the default only, then the file, then the env, then the flags
	}{
		{
			name: "int",
			get:  func(c *Config) any { return c.MaxStages },
			given: layers{"max_stages = 5", map[string]string{"IVSRT_MAX_STAGES": "6"},
				[]string{"--max-stages", "7"}},
			want: [4]any{0, 5, 6, 7},
		},
		{
			name: "string",
			get:  func(c *Config) any { return c.Listen },
			given: layers{`listen = "127.0.0.1:1"`, map[string]string{"IVSRT_LISTEN": "127.0.0.1:2"},
				[]string{"--listen=127.0.0.1:3"}},
			want: [4]any{"127.0.0.1:7870", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
		},
		{
			name: "duration",
			get:  func(c *Config) any { return c.EventRetryFor },
			given: layers{`event_retry_for = "1h"`, map[string]string{"IVSRT_EVENT_RETRY_FOR": "90m"},
				[]string{"--event-retry-for", "3h"}},
			want: [4]any{events.DefaultRetryFor, time.Hour, 90 * time.Minute, 3 * time.Hour},
		},
		{
			name: "duration that had no variable before",
			get:  func(c *Config) any { return c.ClusterDeadAfter },
			given: layers{`cluster_dead_after = "20s"`, map[string]string{"IVSRT_CLUSTER_DEAD_AFTER": "30s"},
				[]string{"--cluster-dead-after", "40s"}},
			want: [4]any{cluster.DefaultDeadAfter, 20 * time.Second, 30 * time.Second, 40 * time.Second},
		},
		{
			name: "bool",
			get:  func(c *Config) any { return c.Dev },
			given: layers{"dev = true", map[string]string{"IVSRT_DEV": "false"},
				[]string{"--dev"}},
			want: [4]any{false, true, false, true},
		},
		{
			name: "bool turned off by a flag",
			get:  func(c *Config) any { return c.NATSJetStream },
			given: layers{"nats_jetstream = false", map[string]string{"IVSRT_NATS_JETSTREAM": "true"},
				[]string{"--nats-jetstream=false"}},
			want: [4]any{false, false, true, false},
		},
		{
			name: "list",
			get:  func(c *Config) any { return c.WebhookURLs },
			given: layers{`webhook_url = ["http://file/"]`,
				map[string]string{"IVSRT_WEBHOOK_URL": "http://env-1/, http://env-2/,"},
				[]string{"--webhook-url", "http://flag-1/?a=1,2", "--webhook-url", "http://flag-2/"}},
			want: [4]any{[]string(nil), []string{"http://file/"}, []string{"http://env-1/", "http://env-2/"},
				[]string{"http://flag-1/?a=1,2", "http://flag-2/"}}, // a flag is one URL, commas and all
		},
	}
	for _, tt := range tests {
		for n, layer := range []string{"default", "file", "env", "flag"} {
			t.Run(tt.name+"/"+layer, func(t *testing.T) {
				var file string
				var env map[string]string
				var args []string
				if n >= 1 {
					file = tt.given.file
				}
				if n >= 2 {
					env = tt.given.env
				}
				if n >= 3 {
					args = tt.given.args
				}
				m, err := parse(t, file, env, args...)
				if err != nil {
					t.Fatal(err)
				}
				if got := tt.get(&m.Config); !reflect.DeepEqual(got, tt.want[n]) {
					t.Errorf("got %#v, want %#v", got, tt.want[n])
				}
			})
		}
	}
}

// TestConfigFileName: IVSRT_CONFIG names the file, unless --config does.
func TestConfigFileName(t *testing.T) {
	clearEnv(t)
	fromEnv := writeConfigFile(t, "max_stages = 1")
	fromFlag := writeConfigFile(t, "max_stages = 2")
	t.Setenv("IVSRT_CONFIG", fromEnv)
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, 1},
		{[]string{"--config", fromFlag}, 2},
	} {
		m := NewMain()
		if err := m.ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		if m.Config.MaxStages != tt.want {
			t.Errorf("%v: got max stages %d, want %d", tt.args, m.Config.MaxStages, tt.want)
		}
	}
}

// TestConfigRTCPortsGiven: a media port given in any source counts as
// given, so that a server on port 0 does not replace it with a free one.
func TestConfigRTCPortsGiven(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want bool
	}{
		{"none", "", nil, nil, false},
		{"file", "rtc_udp_port = 0", nil, nil, true},
		{"env", "", map[string]string{"IVSRT_RTC_TCP_PORT": "-1"}, nil, true},
		{"flag", "", nil, []string{"--rtc-udp-port", "0"}, true},
		{"another setting", "max_stages = 3", map[string]string{"IVSRT_LISTEN": "127.0.0.1:0"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(t, tt.file, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if m.rtcPortsGiven != tt.want {
				t.Errorf("got rtcPortsGiven %v, want %v", m.rtcPortsGiven, tt.want)
			}
		})
	}
}

// TestConfigErrors: a bad value, an unknown key or a misspelt variable
// stops the server with a message that names where the mistake is.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string // in the error
	}{
		{"env int", "", map[string]string{"IVSRT_MAX_STAGES": "x"}, nil,
			[]string{`IVSRT_MAX_STAGES="x": want a whole number`}},
		{"env bool", "", map[string]string{"IVSRT_DEV": "maybe"}, nil,
			[]string{`IVSRT_DEV="maybe": want true or false`}},
		{"env duration", "", map[string]string{"IVSRT_DRAIN_TIMEOUT": "10"}, nil,
			[]string{`IVSRT_DRAIN_TIMEOUT="10": want a duration`}},
		{"env misspelt", "", map[string]string{"IVSRT_MAX_STAGE": "3"}, nil,
			[]string{"IVSRT_MAX_STAGE is not a setting of ivsrt serve, did you mean IVSRT_MAX_STAGES?"}},
		{"env misspelt, swapped letters", "", map[string]string{"IVSRT_WEBHOOK_SERCET": "s"}, nil,
			[]string{"IVSRT_WEBHOOK_SERCET is not a setting", "IVSRT_WEBHOOK_SECRET?"}},
		{"file int", `max_stages = "x"`, nil, nil,
			[]string{"ivsrt.toml: max_stages: want a whole number, not a string"}},
		{"file duration", `event_retention = "a week"`, nil, nil,
			[]string{`ivsrt.toml: event_retention: want a duration such as 90s or 24h, not "a week"`}},
		{"file duration as a number", `drain_timeout = 10`, nil, nil,
			[]string{`ivsrt.toml: drain_timeout: want a duration such as 90s or 24h, not an integer`}},
		{"file list", `webhook_url = "http://one/"`, nil, nil,
			[]string{"ivsrt.toml: webhook_url: want a list of strings, not a string"}},
		{"file secret", `webhook_secret = 12345`, nil, nil,
			[]string{"ivsrt.toml: webhook_secret: want a string, a secret of the wrong type"}},
		{"file unknown key", "max_stages = 1\nmaxstages = 2", nil, nil,
			[]string{`ivsrt.toml: unknown key "maxstages", did you mean max_stages?`}},
		{"file key in flag form", "max-stages = 2", nil, nil,
			[]string{`ivsrt.toml: unknown key "max-stages", did you mean max_stages?`}},
		{"file unknown keys", "colour = 1\n[cluster]\nlease = \"1m\"", nil, nil,
			[]string{`ivsrt.toml: unknown key "colour"`, `ivsrt.toml: unknown key "cluster"`}},
		{"file key of no setting", "print_config = true", nil, nil,
			[]string{`ivsrt.toml: unknown key "print_config"`}},
		{"file syntax", "max_stages = = 1", nil, nil,
			[]string{"ivsrt.toml:1: "}},
		{"file missing", "", map[string]string{"IVSRT_CONFIG": "/nonexistent/ivsrt.toml"}, nil,
			[]string{"read configuration file", "/nonexistent/ivsrt.toml"}},
		{"flag value", "", nil, []string{"--max-stages", "x"},
			[]string{`invalid value "x" for flag -max-stages: want a whole number`, "ivsrt serve -h lists the flags"}},
		{"flag unknown", "", nil, []string{"--max-stagess", "1"},
			[]string{"flag provided but not defined: -max-stagess", "(ivsrt serve -h lists the flags)"}},
		{"arguments", "", nil, []string{"extra"},
			[]string{`unexpected arguments ["extra"]`}},
		{"validated after loading", `account_id = "1"`, nil, nil,
			[]string{`--account-id "1": want 12 digits`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.file, tt.env, tt.args...)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestConfigOtherEnv: IVSRT_* variables that are no setting but that
// other programs read, or that extend a setting's name on purpose (a
// sink's secretEnv), do not stop the server; the unknown ones are
// reported for a warning.
func TestConfigOtherEnv(t *testing.T) {
	m, err := parse(t, "", map[string]string{
		"IVSRT_ENDPOINT_URL":           "http://127.0.0.1:7870", // the client commands'
		"IVSRT_TEST_POSTGRES":          "postgres://x",
		"IVSRT_WEBHOOK_SECRET_BILLING": "s",
		"IVSRT_DATA_DIR":               "/var/lib/ivsrt",
		"IVSRT_CONFIG":                 "",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IVSRT_DATA_DIR", "IVSRT_WEBHOOK_SECRET_BILLING"}
	if got := m.sources.UnknownEnv; !reflect.DeepEqual(got, want) {
		t.Errorf("got unknown %q, want %q", got, want)
	}
}

// TestConfigNames: a setting's variable and file key are its flag's name
// spelt another way, so that knowing one is knowing all three.
func TestConfigNames(t *testing.T) {
	for _, st := range NewMain().settings().Settings {
		if st.Env == "" && st.Key == "" {
			continue // of the command line only, as --print-config
		}
		snake := strings.ReplaceAll(st.Flag, "-", "_")
		if want := "IVSRT_" + strings.ToUpper(snake); st.Env != want {
			t.Errorf("--%s: got variable %s, want %s", st.Flag, st.Env, want)
		}
		if st.Key != snake {
			t.Errorf("--%s: got file key %s, want %s", st.Flag, st.Key, snake)
		}
	}
}

// Secrets and credentials for the tests of what ivsrt serve prints.
const (
	envWebhookSecret = "whsec-from-env-1111"
	envSecretKey     = "secret-key-from-env-2222"
	fileWebhookURL   = "http://hook-user:hook-password-3333@hooks.example.com/in?token=query-token-4444"
	fileStore        = "postgres://ivsrt:db-password-5555@db.example.com/ivsrt"
	envNATS          = "nats://nats-user:nats-password-6666@nats.example.com:4222"
	envListen        = "127.0.0.1:7999" // no secret, but not a built-in default either
)

var printedSecrets = []string{envWebhookSecret, envSecretKey, "hook-password-3333", "query-token-4444",
	"db-password-5555", "nats-password-6666"}

// secretEnv sets secrets in the environment and in a configuration file
// named by IVSRT_CONFIG, as a deployment might.
func secretEnv(t *testing.T) []string {
	path := writeConfigFile(t, `webhook_url = ["`+fileWebhookURL+`"]`+"\nstore = \""+fileStore+"\"\n")
	return cliEnv(
		"IVSRT_CONFIG="+path,
		"IVSRT_WEBHOOK_SECRET="+envWebhookSecret,
		"IVSRT_ACCESS_KEY_ID=AKIAEXAMPLE",
		"IVSRT_SECRET_ACCESS_KEY="+envSecretKey,
		"IVSRT_NATS_URL="+envNATS,
		"IVSRT_LISTEN="+envListen,
	)
}

// TestConfigHelp: serve -h shows the built-in defaults, never what the
// environment or the file hold, and never a secret; it is asked for, so
// it goes to stdout and exits 0.
func TestConfigHelp(t *testing.T) {
	r := cliExec(t, testContext(t), secretEnv(t), cliBinary(t), "serve", "-h")
	if r.code != 0 {
		t.Errorf("got exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	for _, secret := range append(printedSecrets, envListen, "AKIAEXAMPLE") {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("the help shows %q", secret)
		}
	}
	for _, want := range []string{"--webhook-secret string", "IVSRT_WEBHOOK_SECRET", "default 127.0.0.1:7870", "--config file", "--print-config"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the help lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestConfigBadFlag: a bad flag prints its error and a hint, not the
// help, which would push the error off the screen.
func TestConfigBadFlag(t *testing.T) {
	r := cliExec(t, testContext(t), cliEnv(), cliBinary(t), "serve", "--listne", "127.0.0.1:0")
	want := "ivsrt: flag provided but not defined: -listne (ivsrt serve -h lists the flags)\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("got exit code %d, stderr %q, stdout %q; want 1, %q and nothing", r.code, r.stderr, r.stdout, want)
	}
}

// TestConfigPrint: --print-config prints the configuration, secrets left
// out, and exits without serving; what it prints reads back as a
// configuration file to the same settings, bar the secrets.
func TestConfigPrint(t *testing.T) {
	env := secretEnv(t)
	r := cliExec(t, testContext(t), env, cliBinary(t), "serve", "--print-config", "--max-stages", "9", "--dev")
	if r.code != 0 {
		t.Fatalf("got exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	for _, secret := range printedSecrets {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("--print-config shows %q:\n%s", secret, r.stdout)
		}
	}
	for _, want := range []string{
		`listen = "` + envListen + `" # from IVSRT_LISTEN`,
		"max_stages = 9 # from --max-stages",
		"dev = true # from --dev",
		`event_retry_for = "24h"`,
		"# webhook_secret is set but secret (from IVSRT_WEBHOOK_SECRET)",
		"# secret_access_key is set but secret (from IVSRT_SECRET_ACCESS_KEY)",
		`webhook_url = ["http://hooks.example.com/in?…"] # from `,
		"@db.example.com/ivsrt\" # from ",
		"credentials redacted",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, r.stdout)
		}
	}

	// Read back, the printout gives the same settings but the secrets and
	// the redacted credentials.
	for _, kv := range env {
		if name, value, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "IVSRT_") {
			t.Setenv(name, value)
		}
	}
	want := NewMain()
	if err := want.ParseFlags([]string{"--max-stages", "9", "--dev"}); err != nil {
		t.Fatal(err)
	}
	got, err := parse(t, r.stdout, nil, "--access-key-id", "", "--webhook-secret", want.Config.WebhookSecret)
	if err != nil {
		t.Fatalf("read the printout back: %v\n%s", err, r.stdout)
	}
	wantConfig := want.Config
	wantConfig.AccessKeyID, wantConfig.SecretAccessKey = "", ""
	wantConfig.WebhookURLs = []string{events.Redact(fileWebhookURL)}
	wantConfig.Store = redactDSN(fileStore)
	wantConfig.NATSURL = redactUserInfo(envNATS)
	if !reflect.DeepEqual(got.Config, wantConfig) {
		t.Errorf("read back:\n got %+v\nwant %+v", got.Config, wantConfig)
	}
}

// TestConfigDocs: the table of docs/configuration.md is made from the
// settings' table; -update rewrites it.
func TestConfigDocs(t *testing.T) {
	const (
		path  = "../../docs/configuration.md"
		begin = "<!-- BEGIN SETTINGS: made by TestConfigDocs -->\n"
		end   = "<!-- END SETTINGS -->\n"
	)
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := bytes.Cut(doc, []byte(begin))
	_, after, ok2 := bytes.Cut(rest, []byte(end))
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the lines %q and %q around the table", path, begin, end)
	}
	table := NewMain().settings().Markdown()
	want := string(before) + begin + table + end + string(after)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(doc) != want {
		t.Errorf("%s differs from the settings in cmd/ivsrt/config.go; run go test ./cmd/ivsrt -run TestConfigDocs -update", path)
	}
}
