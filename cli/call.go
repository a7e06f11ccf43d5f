package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ivsrt/ivsrt/internal/sdkhttp"
)

// caller calls one operation through the SDK with an input given as JSON
// in the model's names.
type caller func(ctx context.Context, c *ivsrealtime.Client, input []byte) error

// sdkCall adapts an SDK client method to a caller: the input's JSON names
// are the SDK input type's field names, matched without regard to case.
func sdkCall[In, Out any](method func(*ivsrealtime.Client, context.Context, *In, ...func(*ivsrealtime.Options)) (Out, error)) caller {
	return func(ctx context.Context, c *ivsrealtime.Client, input []byte) error {
		in := new(In)
		if err := json.Unmarshal(input, in); err != nil {
			return &usageError{fmt.Sprintf("Parameter validation failed:\n%v", err)}
		}
		_, err := method(c, ctx, in)
		return err
	}
}

// callers are the SDK calls of the CLI's operations.
var callers = map[string]caller{
	"CreateParticipantToken":      sdkCall((*ivsrealtime.Client).CreateParticipantToken),
	"CreateStage":                 sdkCall((*ivsrealtime.Client).CreateStage),
	"CreateStorageConfiguration":  sdkCall((*ivsrealtime.Client).CreateStorageConfiguration),
	"DeletePublicKey":             sdkCall((*ivsrealtime.Client).DeletePublicKey),
	"DeleteStage":                 sdkCall((*ivsrealtime.Client).DeleteStage),
	"DeleteStorageConfiguration":  sdkCall((*ivsrealtime.Client).DeleteStorageConfiguration),
	"DisconnectParticipant":       sdkCall((*ivsrealtime.Client).DisconnectParticipant),
	"GetParticipant":              sdkCall((*ivsrealtime.Client).GetParticipant),
	"GetPublicKey":                sdkCall((*ivsrealtime.Client).GetPublicKey),
	"GetStage":                    sdkCall((*ivsrealtime.Client).GetStage),
	"GetStageSession":             sdkCall((*ivsrealtime.Client).GetStageSession),
	"GetStorageConfiguration":     sdkCall((*ivsrealtime.Client).GetStorageConfiguration),
	"ImportPublicKey":             sdkCall((*ivsrealtime.Client).ImportPublicKey),
	"ListParticipantEvents":       sdkCall((*ivsrealtime.Client).ListParticipantEvents),
	"ListParticipants":            sdkCall((*ivsrealtime.Client).ListParticipants),
	"ListPublicKeys":              sdkCall((*ivsrealtime.Client).ListPublicKeys),
	"ListParticipantReplicas":     sdkCall((*ivsrealtime.Client).ListParticipantReplicas),
	"StartParticipantReplication": sdkCall((*ivsrealtime.Client).StartParticipantReplication),
	"StopParticipantReplication":  sdkCall((*ivsrealtime.Client).StopParticipantReplication),
	"ListStageSessions":           sdkCall((*ivsrealtime.Client).ListStageSessions),
	"ListStages":                  sdkCall((*ivsrealtime.Client).ListStages),
	"ListStorageConfigurations":   sdkCall((*ivsrealtime.Client).ListStorageConfigurations),
	"ListTagsForResource":         sdkCall((*ivsrealtime.Client).ListTagsForResource),
	"TagResource":                 sdkCall((*ivsrealtime.Client).TagResource),
	"UntagResource":               sdkCall((*ivsrealtime.Client).UntagResource),
	"UpdateStage":                 sdkCall((*ivsrealtime.Client).UpdateStage),

	"CreateIngestConfiguration": withoutRedundantIngest(sdkCall((*ivsrealtime.Client).CreateIngestConfiguration)),
	"GetIngestConfiguration":    sdkCall((*ivsrealtime.Client).GetIngestConfiguration),
	"ListIngestConfigurations":  sdkCall((*ivsrealtime.Client).ListIngestConfigurations),
	"UpdateIngestConfiguration": withoutRedundantIngest(sdkCall((*ivsrealtime.Client).UpdateIngestConfiguration)),
	"DeleteIngestConfiguration": sdkCall((*ivsrealtime.Client).DeleteIngestConfiguration),

	"CreateEncoderConfiguration": sdkCall((*ivsrealtime.Client).CreateEncoderConfiguration),
	"GetEncoderConfiguration":    sdkCall((*ivsrealtime.Client).GetEncoderConfiguration),
	"ListEncoderConfigurations":  sdkCall((*ivsrealtime.Client).ListEncoderConfigurations),
	"DeleteEncoderConfiguration": sdkCall((*ivsrealtime.Client).DeleteEncoderConfiguration),

	"StartComposition": sdkCall((*ivsrealtime.Client).StartComposition),
	"GetComposition":   sdkCall((*ivsrealtime.Client).GetComposition),
	"ListCompositions": sdkCall((*ivsrealtime.Client).ListCompositions),
	"StopComposition":  sdkCall((*ivsrealtime.Client).StopComposition),
}

// withoutRedundantIngest refuses --redundant-ingest: the SDK this CLI is
// built with predates it, and would drop it without a word. The API takes
// it (docs/api.md).
func withoutRedundantIngest(call caller) caller {
	return func(ctx context.Context, c *ivsrealtime.Client, input []byte) error {
		var in map[string]json.RawMessage
		if json.Unmarshal(input, &in) == nil {
			for k := range in {
				if strings.EqualFold(k, "redundantIngest") {
					return &usageError{"--redundant-ingest is not supported by this CLI yet: call the API (aws ivs-realtime, an SDK) to set it"}
				}
			}
		}
		return call(ctx, c, input)
	}
}

// serviceError is an error response of the server, printed as the aws CLI
// prints it.
type serviceError struct {
	code, message, operation string
}

func (e *serviceError) Error() string {
	return fmt.Sprintf("An error occurred (%s) when calling the %s operation: %s", e.code, e.operation, e.message)
}

// connectError is a server that could not be reached.
type connectError struct {
	url string
	err error
}

func (e *connectError) Error() string {
	return fmt.Sprintf("Could not connect to the endpoint URL: %q", e.url)
}

func (e *connectError) Unwrap() error { return e.err }

// configError is a configuration the CLI cannot work with: no
// credentials, a profile that does not exist.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// rawResponse is the last HTTP response of a call, as the server sent it.
type rawResponse struct {
	url    string
	status int
	header http.Header
	body   []byte
}

type rawKey struct{}

// recordingClient is the SDK's HTTP client: it keeps the raw response of
// each call in the rawResponse its context carries, so that the CLI can
// print what the server sent in the aws CLI's order, and logs exchanges
// with --debug.
type recordingClient struct {
	http  *http.Client
	debug io.Writer
}

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	raw, _ := r.Context().Value(rawKey{}).(*rawResponse)
	if raw != nil {
		*raw = rawResponse{url: r.URL.String()}
	}
	if c.debug != nil {
		fmt.Fprintf(c.debug, "DEBUG request: %s %s\n", r.Method, r.URL)
	}
	resp, err := c.http.Do(r)
	if err != nil {
		if c.debug != nil {
			fmt.Fprintf(c.debug, "DEBUG error: %v\n", err)
		}
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if raw != nil {
		raw.status, raw.header, raw.body = resp.StatusCode, resp.Header.Clone(), body
	}
	if c.debug != nil {
		fmt.Fprintf(c.debug, "DEBUG response: %d %s\n", resp.StatusCode, body)
	}
	return resp, nil
}

// newClient returns an SDK client for the endpoint, region and
// credentials the options and the environment give.
// newTransport returns the HTTP transport the global options (TLS, time
// limits) ask for.
func newTransport(g *globals, env func(string) string) (*http.Transport, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: g.noVerifySSL}
	bundle := g.caBundle
	if bundle == "" {
		bundle = env("AWS_CA_BUNDLE")
	}
	if bundle != "" {
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return nil, &configError{fmt.Sprintf("Could not read the CA bundle %s: %v", bundle, err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &configError{fmt.Sprintf("No certificates in the CA bundle %s", bundle)}
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: g.connectTimeout}).DialContext,
		TLSClientConfig:       tlsConfig,
		ResponseHeaderTimeout: g.readTimeout,
		MaxIdleConnsPerHost:   4,
	}, nil
}

func newClient(g *globals, env func(string) string, debug io.Writer) (*ivsrealtime.Client, error) {
	cfg, err := loadConfig(g, env)
	if err != nil {
		return nil, err
	}
	transport, err := newTransport(g, env)
	if err != nil {
		return nil, err
	}
	// sdkhttp: a response from a server close by can otherwise be cut off.
	httpClient := &recordingClient{http: &http.Client{Transport: sdkhttp.Transport(transport)}}
	if g.debug {
		httpClient.debug = debug
	}
	var creds aws.CredentialsProvider = cfg.credentials
	if g.noSignRequest {
		creds = aws.AnonymousCredentials{}
	}
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           cfg.region,
		Credentials:      creds,
		HTTPClient:       httpClient,
		BaseEndpoint:     aws.String(strings.TrimRight(cfg.endpoint, "/")),
		RetryMaxAttempts: 3,
		APIOptions:       []func(*middleware.Stack) error{addBodyOverride},
	}), nil
}

type bodyKey struct{}

// addBodyOverride sends the JSON body the CLI built instead of the SDK's:
// the SDK leaves out members whose value is the zero of a Go type (a
// filterByPublished of false, a recordingReconnectWindowSeconds of 0),
// which the aws CLI sends. The body is replaced before it is signed.
func addBodyOverride(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("ivsrtBody", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
		body, _ := ctx.Value(bodyKey{}).([]byte)
		if req, ok := in.Request.(*smithyhttp.Request); ok && body != nil {
			r, err := req.SetStream(bytes.NewReader(body))
			if err != nil {
				return middleware.BuildOutput{}, middleware.Metadata{}, err
			}
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Type", "application/json")
			in.Request = r
		}
		return next.HandleBuild(ctx, in)
	}), middleware.After)
}

// call runs one operation with input and returns its response decoded, in
// the order the server sent it.
func call(ctx context.Context, c *ivsrealtime.Client, op *operation, input *object) (any, error) {
	body, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	raw := &rawResponse{}
	callCtx := context.WithValue(ctx, rawKey{}, raw)
	if op.URI == "/"+op.Name {
		// The whole input is the body: send it as the aws CLI would.
		callCtx = context.WithValue(callCtx, bodyKey{}, body)
	}
	callErr := callers[op.Name](callCtx, c, body)
	if raw.status == 0 {
		if callErr == nil {
			return nil, errors.New("no response")
		}
		var ue *usageError
		if errors.As(callErr, &ue) {
			return nil, ue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if raw.url == "" {
			return nil, callErr
		}
		return nil, &connectError{url: raw.url, err: callErr}
	}
	if raw.status >= 300 {
		return nil, parseServiceError(op.Name, raw)
	}
	v, err := decodeJSON(raw.body)
	if err != nil {
		return nil, fmt.Errorf("the response of %s is not JSON: %v", op.Name, err)
	}
	if o, ok := v.(*object); ok {
		addHeaderMembers(shapeOf(op.Output), o, raw.header)
	}
	return v, nil
}

// addHeaderMembers adds to out the members of the output shape that come
// in response headers, as botocore reads them into the output.
func addHeaderMembers(s *shape, out *object, h http.Header) {
	if s == nil {
		return
	}
	for _, m := range s.Members {
		if m.Location != "header" {
			continue
		}
		if vs, ok := h[http.CanonicalHeaderKey(m.LocationName)]; ok && len(vs) > 0 {
			out.set(m.Name, vs[0])
		}
	}
}

// parseServiceError reads an error response as botocore does: the code
// from x-amzn-ErrorType (or the body's __type or code), the message from
// the body's message.
func parseServiceError(opName string, raw *rawResponse) error {
	code := raw.header.Get("X-Amzn-Errortype")
	var body map[string]any
	json.Unmarshal(raw.body, &body)
	if code == "" {
		for _, k := range []string{"__type", "code"} {
			if s, ok := body[k].(string); ok && s != "" {
				code = s
				break
			}
		}
	}
	code, _, _ = strings.Cut(code, ":")
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = fmt.Sprint(raw.status)
	}
	msg := "Unknown"
	for _, k := range []string{"message", "Message", "errorMessage"} {
		if s, ok := body[k].(string); ok && s != "" {
			msg = s
			break
		}
	}
	return &serviceError{code: code, message: msg, operation: opName}
}

// resolved is the configuration a call is made with.
type resolved struct {
	endpoint    string
	region      string
	credentials aws.CredentialsProvider
}

// DefaultEndpoint is where the CLI finds the server unless told otherwise.
const DefaultEndpoint = "http://127.0.0.1:7870"

// timeNow is the CLI's clock.
var timeNow = time.Now
