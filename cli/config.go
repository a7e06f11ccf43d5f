package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
)

// loadConfig resolves the endpoint, region and credentials of a call the
// way the aws CLI does, for what a local server needs:
//
//   - endpoint: --endpoint-url, IVSRT_ENDPOINT_URL, http://127.0.0.1:7870;
//   - profile: --profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default";
//   - credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
//     AWS_SESSION_TOKEN) unless --profile is given, then the profile's keys
//     in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
//     ~/.aws/credentials) or config file (AWS_CONFIG_FILE, ~/.aws/config),
//     or its credential_process; last, the credentials.json an `ivsrt
//     serve` keeps in its data folder (IVSRT_DATA, ./ivsrt-data);
//   - region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's
//     region, us-east-1.
func loadConfig(g *globals, env func(string) string) (*resolved, error) {
	r := &resolved{endpoint: g.endpointURL}
	if r.endpoint == "" {
		r.endpoint = env("IVSRT_ENDPOINT_URL")
	}
	if r.endpoint == "" {
		r.endpoint = DefaultEndpoint
	}
	if !strings.HasPrefix(r.endpoint, "http://") && !strings.HasPrefix(r.endpoint, "https://") {
		return nil, &usageError{fmt.Sprintf("Bad value for --endpoint-url \"%s\": scheme is missing.  Must be of the form http://<hostname>/ or https://<hostname>/", r.endpoint)}
	}

	explicit := g.profile != ""
	profile := g.profile
	for _, name := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		if profile == "" {
			profile = env(name)
		}
	}
	named := profile != ""
	if profile == "" {
		profile = "default"
	}
	credsFile := sharedFile(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
	configFile := sharedFile(env, "AWS_CONFIG_FILE", "config")
	fromCreds, credsFound := readINI(credsFile, profile)
	fromConfig, configFound := readINI(configFile, "profile "+profile)
	if !configFound && profile == "default" {
		fromConfig, configFound = readINI(configFile, "default")
	}
	if named && profile != "default" && !credsFound && !configFound {
		return nil, &configError{fmt.Sprintf("The config profile (%s) could not be found", profile)}
	}

	r.region = g.region
	for _, v := range []string{env("AWS_REGION"), env("AWS_DEFAULT_REGION"), fromConfig["region"], "us-east-1"} {
		if r.region == "" {
			r.region = v
		}
	}

	if id, secret := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"); !explicit && id != "" && secret != "" {
		r.credentials = credentials.NewStaticCredentialsProvider(id, secret, env("AWS_SESSION_TOKEN"))
		return r, nil
	}
	for _, section := range []map[string]string{fromCreds, fromConfig} {
		if id, secret := section["aws_access_key_id"], section["aws_secret_access_key"]; id != "" && secret != "" {
			r.credentials = credentials.NewStaticCredentialsProvider(id, secret, section["aws_session_token"])
			return r, nil
		}
	}
	for _, section := range []map[string]string{fromCreds, fromConfig} {
		if cmd := section["credential_process"]; cmd != "" {
			r.credentials = aws.NewCredentialsCache(processcreds.NewProvider(cmd))
			return r, nil
		}
	}
	if explicit {
		return nil, &configError{noCredentials + "\n" + fmt.Sprintf("The profile %s has neither aws_access_key_id and aws_secret_access_key "+
			"nor credential_process; with --profile, ivsrt reads neither AWS_ACCESS_KEY_ID nor the credentials.json of an ivsrt server.", profile)}
	}
	c, why := serverCredentials(env)
	if c == nil {
		return nil, &configError{noCredentials + "\n" + serverCredentialsHelp(why)}
	}
	r.credentials = c
	return r, nil
}

// noCredentials is the aws CLI's message when it finds no credentials.
const noCredentials = "Unable to locate credentials. You can configure credentials by running \"aws configure\"."

// serverCredentialsHelp says where the keys of an ivsrt server come from,
// after why its credentials.json could not be used.
func serverCredentialsHelp(why string) string {
	return "For an ivsrt server: ivsrt also reads the keys `ivsrt serve` generated at first start from credentials.json\n" +
		"in the server's data folder ($IVSRT_DATA, else ./ivsrt-data), but " + why + ".\n" +
		"- Run ivsrt in the folder the server was started in, or set IVSRT_DATA to the server's data folder (its --data).\n" +
		"- A server started with --access-key-id and --secret-access-key (IVSRT_ACCESS_KEY_ID, IVSRT_SECRET_ACCESS_KEY),\n" +
		"  or a node of a cluster, writes no credentials.json: export its keys as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\n" +
		"- A server started with --dev accepts any keys."
}

// sharedFile is the path of one of the aws CLI's shared files.
func sharedFile(env func(string) string, name, base string) string {
	if p := env(name); p != "" {
		return expandHome(p)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".aws", base)
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// readINI returns the keys of one section of an INI file, and whether the
// section is there.
func readINI(path, section string) (map[string]string, bool) {
	keys := map[string]string{}
	if path == "" {
		return keys, false
	}
	f, err := os.Open(path)
	if err != nil {
		return keys, false
	}
	defer f.Close()
	found, in := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			name := strings.Join(strings.Fields(line[1:len(line)-1]), " ")
			in = name == section
			found = found || in
			continue
		}
		if !in {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return keys, found
}

// serverCredentials reads the keys a local `ivsrt serve` generated in its
// data folder, so that the CLI works on the same machine out of the box.
// Without them it says why not.
func serverCredentials(env func(string) string) (c aws.CredentialsProvider, why string) {
	dir := env("IVSRT_DATA")
	if dir == "" {
		dir = "./ivsrt-data"
	}
	path := filepath.Join(dir, "credentials.json")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs // for the message
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "there is no " + path
	} else if err != nil {
		return nil, fmt.Sprintf("%s could not be read (%v)", path, err)
	}
	var keys struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	if json.Unmarshal(data, &keys) != nil || keys.AccessKeyID == "" || keys.SecretAccessKey == "" {
		return nil, path + ` is not {"accessKeyId": ..., "secretAccessKey": ...}`
	}
	return credentials.NewStaticCredentialsProvider(keys.AccessKeyID, keys.SecretAccessKey, ""), ""
}

// ensure the credentials can be retrieved before a call, so that a broken
// credential_process is a configuration error, not a failed request.
func checkCredentials(ctx context.Context, p aws.CredentialsProvider) error {
	if _, ok := p.(aws.AnonymousCredentials); ok {
		return nil
	}
	if _, err := p.Retrieve(ctx); err != nil {
		return &configError{fmt.Sprintf("Unable to retrieve credentials: %v", err)}
	}
	return nil
}
