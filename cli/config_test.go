package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCredentials checks what the CLI says when it finds no credentials:
// the aws CLI's words, then where an ivsrt server's keys come from and why
// the data folder's were not used.
func TestNoCredentials(t *testing.T) {
	home := t.TempDir()
	configFile := filepath.Join(home, "config")
	if err := os.WriteFile(configFile, []byte("[profile regional]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, "credentials.json"), []byte(`{"accessKeyId": "AKIV"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	serverHelp := []string{
		"credentials.json\nin the server's data folder ($IVSRT_DATA, else ./ivsrt-data)",
		"set IVSRT_DATA to the server's data folder",
		"--access-key-id and --secret-access-key",
		"export its keys as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		"--dev accepts any keys",
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"no data folder", []string{"list-stages"}, map[string]string{"IVSRT_DATA": empty},
			append([]string{"but there is no " + filepath.Join(empty, "credentials.json") + ".\n"}, serverHelp...)},
		{"damaged credentials.json", []string{"list-stages"}, map[string]string{"IVSRT_DATA": damaged},
			append([]string{"but " + filepath.Join(damaged, "credentials.json") + ` is not {"accessKeyId": ..., "secretAccessKey": ...}.`}, serverHelp...)},
		{"only a secret key", []string{"list-stages"}, map[string]string{"IVSRT_DATA": empty, "AWS_SECRET_ACCESS_KEY": "x"},
			[]string{"but there is no " + filepath.Join(empty, "credentials.json")}},
		{"a profile without keys", []string{"list-stages", "--profile", "regional"}, map[string]string{"IVSRT_DATA": empty, "AWS_ACCESS_KEY_ID": "AKIV", "AWS_SECRET_ACCESS_KEY": "x"},
			[]string{"The profile regional has neither aws_access_key_id and aws_secret_access_key nor credential_process",
				"with --profile, ivsrt reads neither AWS_ACCESS_KEY_ID nor the credentials.json of an ivsrt server"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "credentials"),
				"AWS_CONFIG_FILE":             configFile,
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, IO{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
			if code != ExitConfig {
				t.Errorf("exit status got %d, want %d", code, ExitConfig)
			}
			want := "\n" + noCredentials + "\n"
			if got := stderr.String(); !strings.HasPrefix(got, want) {
				t.Errorf("stderr got %q, want it to start with %q", got, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr got %q, want it to contain %q", stderr.String(), w)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout got %q, want nothing", stdout.String())
			}
		})
	}
}

// TestServerCredentials checks that the keys in a server's data folder
// are used when nothing else gives credentials, and only then.
func TestServerCredentials(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "credentials.json"),
		[]byte(`{"accessKeyId": "AKIVFROMDATA", "secretAccessKey": "secret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(t.TempDir(), "none")
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"the data folder", map[string]string{"IVSRT_DATA": data}, "AKIVFROMDATA"},
		{"the environment first", map[string]string{"IVSRT_DATA": data, "AWS_ACCESS_KEY_ID": "AKIVFROMENV", "AWS_SECRET_ACCESS_KEY": "x"}, "AKIVFROMENV"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": none}
			for k, v := range tt.env {
				env[k] = v
			}
			r, err := loadConfig(&globals{}, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			c, err := r.credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if c.AccessKeyID != tt.want {
				t.Errorf("access key id got %v, want %v", c.AccessKeyID, tt.want)
			}
		})
	}
}
