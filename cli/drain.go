package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// drainPath is where a server takes a signed request to drain and stop
// (cmd/ivsrt's DrainPath).
const drainPath = "/v1/server/drain"

const drainUsage = `usage: ivsrt [--endpoint-url URL] drain

Asks the server to drain, as SIGTERM does: it stops taking new
participants, lets the live sessions go on for up to its --drain-timeout,
then disconnects whoever is left and stops. The request is signed with the
same credentials as the API commands.
`

// runDrain sends the drain request and prints the server's answer.
func runDrain(ctx context.Context, g *globals, args []string, stdio IO) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdio.Stdout, drainUsage)
			return ExitOK
		}
		return fail(stdio, usageErrorf("drain takes no arguments, got %q", strings.Join(args, " ")))
	}
	if err := drain(ctx, g, stdio); err != nil {
		return fail(stdio, err)
	}
	return ExitOK
}

func drain(ctx context.Context, g *globals, stdio IO) error {
	cfg, err := loadConfig(g, stdio.Getenv)
	if err != nil {
		return err
	}
	transport, err := newTransport(g, stdio.Getenv)
	if err != nil {
		return err
	}
	if err := checkCredentials(ctx, cfg.credentials); err != nil {
		return err
	}
	creds, err := cfg.credentials.Retrieve(ctx)
	if err != nil {
		return &configError{fmt.Sprintf("Unable to read the credentials: %v", err)}
	}
	url := strings.TrimRight(cfg.endpoint, "/") + drainPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return &usageError{fmt.Sprintf("Bad endpoint %q: %v", cfg.endpoint, err)}
	}
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "ivs", cfg.region, time.Now()); err != nil {
		return fmt.Errorf("sign the request: %w", err)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return &connectError{url: url, err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted {
		return &serviceError{code: errorType(resp), operation: "drain", message: strings.TrimSpace(string(body))}
	}
	stdio.Stdout.Write(body)
	return nil
}

// errorType is the AWS error type of an error answer, else its status.
func errorType(resp *http.Response) string {
	if t := resp.Header.Get("x-amzn-ErrorType"); t != "" {
		return t
	}
	return resp.Status
}
