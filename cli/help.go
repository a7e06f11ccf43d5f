package cli

import (
	"bytes"
	"fmt"
	"strings"
)

func usage() string {
	var b strings.Builder
	b.WriteString(`usage: ivsrt [options] <command> [parameters]

The Amazon IVS Real-Time API commands of the aws CLI (aws ivs-realtime ...),
with the same names, flags, shorthand syntax and output, talking to an ivsrt
server (--endpoint-url, default $IVSRT_ENDPOINT_URL or ` + DefaultEndpoint + `).

  ivsrt serve [flags]   run the server (ivsrt serve -h lists its flags)
  ivsrt version         print the version

Commands:
`)
	for _, c := range Commands() {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	b.WriteString(`
  bot                   synthetic participants: publish a test pattern and a tone, subscribe, report
  drain                 ask the server to drain and stop, as SIGTERM does
  completion bash|zsh   print a shell completion script

Run "ivsrt <command> --help" for a command's options and an example.
` + globalHelp)
	return b.String()
}

const globalHelp = `
Global options (anywhere on the line):
  --endpoint-url URL     the server (IVSRT_ENDPOINT_URL, default ` + DefaultEndpoint + `)
  --region REGION        the region to sign for (AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1)
  --profile NAME         a profile of ~/.aws/credentials and ~/.aws/config (AWS_PROFILE)
  --output FORMAT        json (default), text or table (AWS_DEFAULT_OUTPUT)
  --color on|off|auto    color in table output
  --no-paginate          one call, one page, for list commands
  --no-sign-request      send requests unsigned
  --no-verify-ssl        do not verify the server's TLS certificate
  --ca-bundle FILE       certificates to verify the server's with (AWS_CA_BUNDLE)
  --cli-read-timeout N, --cli-connect-timeout N   seconds, 0 for none (default 60)
  --debug                log each request and response to stderr

Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile's keys or
credential_process, else the credentials.json of a local server's data folder
(IVSRT_DATA, default ./ivsrt-data).

Exit status: 0 success, 252 bad command line, 253 configuration (no
credentials), 254 the server returned an error, 255 any other failure.
`

// examples are one use of each command.
var examples = map[string]string{
	"CreateStage": `ivsrt create-stage --name demo --tags env=dev,team=video \
    --participant-token-configurations userId=alice,capabilities=PUBLISH userId=bob,duration=60`,
	"CreateParticipantToken": `ivsrt create-participant-token --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 \
    --user-id alice --attributes role=host --capabilities PUBLISH SUBSCRIBE --duration 60`,
	"DeleteStage":           `ivsrt delete-stage --arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234`,
	"DisconnectParticipant": `ivsrt disconnect-participant --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --participant-id Ab3dE5gH7jK9 --reason "Removed by the moderator"`,
	"GetParticipant":        `ivsrt get-participant --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --session-id st-AbCdEfGhIjKlM --participant-id Ab3dE5gH7jK9`,
	"GetStage":              `ivsrt get-stage --arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234`,
	"GetStageSession":       `ivsrt get-stage-session --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --session-id st-AbCdEfGhIjKlM`,
	"ListParticipantEvents": `ivsrt list-participant-events --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --session-id st-AbCdEfGhIjKlM --participant-id Ab3dE5gH7jK9`,
	"ListParticipants":      `ivsrt list-participants --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --session-id st-AbCdEfGhIjKlM --filter-by-published`,
	"ListStageSessions":     `ivsrt list-stage-sessions --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --output table`,
	"ListStages":            `ivsrt list-stages --max-items 10 --output text`,
	"ListTagsForResource":   `ivsrt list-tags-for-resource --resource-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234`,
	"TagResource":           `ivsrt tag-resource --resource-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --tags env=prod owner=ops`,
	"UntagResource":         `ivsrt untag-resource --resource-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --tag-keys env owner`,
	"UpdateStage": `ivsrt update-stage --arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --name renamed \
    --auto-participant-recording-configuration storageConfigurationArn=arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234,mediaTypes=AUDIO_ONLY`,

	"CreateStorageConfiguration": `ivsrt create-storage-configuration --name recordings --s3 bucketName=my-recordings --tags env=prod`,
	"GetStorageConfiguration":    `ivsrt get-storage-configuration --arn arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234`,
	"ListStorageConfigurations":  `ivsrt list-storage-configurations --output table`,
	"DeleteStorageConfiguration": `ivsrt delete-storage-configuration --arn arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234`,

	"ImportPublicKey": `openssl ecparam -name secp384r1 -genkey -noout -out priv.pem && openssl ec -in priv.pem -pubout -out public.pem
    ivsrt import-public-key --public-key-material "$(cat public.pem)" --name signer --tags env=prod`,
	"GetPublicKey":    `ivsrt get-public-key --arn arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCD1234`,
	"ListPublicKeys":  `ivsrt list-public-keys --output table`,
	"DeletePublicKey": `ivsrt delete-public-key --arn arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCD1234`,

	"CreateIngestConfiguration": `ivsrt create-ingest-configuration --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 \
    --ingest-protocol RTMPS --user-id obs --attributes role=camera`,
	"GetIngestConfiguration":    `ivsrt get-ingest-configuration --arn arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abcdABCD1234`,
	"ListIngestConfigurations":  `ivsrt list-ingest-configurations --filter-by-state ACTIVE --output table`,
	"UpdateIngestConfiguration": `ivsrt update-ingest-configuration --arn arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abcdABCD1234 --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/efghEFGH5678`,
	"DeleteIngestConfiguration": `ivsrt delete-ingest-configuration --arn arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abcdABCD1234 --force`,

	"CreateEncoderConfiguration": `ivsrt create-encoder-configuration --name hd --video width=1920,height=1080,framerate=30,bitrate=6000000 --tags env=prod`,
	"GetEncoderConfiguration":    `ivsrt get-encoder-configuration --arn arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234`,
	"ListEncoderConfigurations":  `ivsrt list-encoder-configurations --output table`,
	"DeleteEncoderConfiguration": `ivsrt delete-encoder-configuration --arn arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234`,

	"StartComposition": `ivsrt start-composition --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 \
    --layout '{"grid":{"featuredParticipantAttribute":"featured"}}' \
    --destinations '[{"s3":{"storageConfigurationArn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234","encoderConfigurationArns":["arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234"]}}]'`,
	"GetComposition":   `ivsrt get-composition --arn arn:aws:ivs:us-east-1:123456789012:composition/abcdABCD1234`,
	"ListCompositions": `ivsrt list-compositions --filter-by-stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --output table`,
	"StopComposition":  `ivsrt stop-composition --arn arn:aws:ivs:us-east-1:123456789012:composition/abcdABCD1234`,
}

// commandHelp is a command's --help.
func commandHelp(op *operation) string {
	var b strings.Builder
	name := commandName(op.Name)
	fmt.Fprintf(&b, "NAME\n    %s\n\nDESCRIPTION\n%s\n\nSYNOPSIS\n    ivsrt %s\n", name, indent(wrap(op.Doc, 72), 4), name)
	in := shapeOf(op.Input)
	_, paginated := paginators[op.Name]
	for _, f := range operationFlags(op) {
		arg := f.cli + " <value>"
		if f.shape.Type == "boolean" {
			arg = f.cli + " | --no-" + strings.TrimPrefix(f.cli, "--")
		}
		if in.required(f.member.Name) {
			fmt.Fprintf(&b, "        %s\n", arg)
		} else {
			fmt.Fprintf(&b, "        [%s]\n", arg)
		}
	}
	b.WriteString("        [--cli-input-json <value>]\n")
	if paginated {
		b.WriteString("        [--starting-token <value>]\n        [--page-size <value>]\n        [--max-items <value>]\n")
	}
	b.WriteString("        [--generate-cli-skeleton <value>]\n\nOPTIONS\n")
	for _, f := range operationFlags(op) {
		typ := f.shape.Type
		if len(f.shape.Enum) > 0 {
			typ = "string"
		}
		fmt.Fprintf(&b, "    %s (%s)\n", f.cli, typ)
		if f.member.Doc != "" {
			b.WriteString(indent(wrap(f.member.Doc, 68), 8) + "\n")
		}
		if len(f.shape.Enum) > 0 {
			fmt.Fprintf(&b, "        Possible values: %s\n", strings.Join(f.shape.Enum, ", "))
		}
		if f.shape.Type == "list" && len(shapeOf(f.shape.Member).Enum) > 0 {
			fmt.Fprintf(&b, "        Possible values: %s\n", strings.Join(shapeOf(f.shape.Member).Enum, ", "))
		}
		if f.shape.complex() {
			fmt.Fprintf(&b, "        Shorthand syntax:\n            %s\n", shorthandSyntax(f.shape))
			var j bytes.Buffer
			writePythonJSON(&j, skeleton(f.shape, 0), 0)
			fmt.Fprintf(&b, "        JSON syntax:\n%s\n", indent(j.String(), 12))
		}
		b.WriteString("\n")
	}
	b.WriteString("    --cli-input-json (string)\n        The whole input as JSON (inline or file://path); flags given on the\n        command line win over its values.\n\n")
	if paginated {
		b.WriteString(`    --starting-token (string)
        Where to start: the NextToken an earlier command printed.

    --page-size (integer)
        Items per call (maxResults); all pages are fetched all the same.

    --max-items (integer)
        Items to print in all; a NextToken is printed to go on from there.

    This command pages through the results by itself: --no-paginate,
    --next-token or --max-results make it one call.

`)
	}
	b.WriteString("    --generate-cli-skeleton (string)\n        Print a JSON skeleton of the input (input) or output (output).\n\n")
	fmt.Fprintf(&b, "EXAMPLE\n    %s\n", examples[op.Name])
	b.WriteString(globalHelp)
	return b.String()
}

// shorthandSyntax is the shorthand form of a complex shape, for help.
func shorthandSyntax(s *shape) string {
	switch s.Type {
	case "map":
		return "KeyName1=string,KeyName2=string"
	case "list":
		item := shorthandSyntax(shapeOf(s.Member))
		return item + " " + item
	case "structure":
		var parts []string
		for _, m := range s.Members {
			ms := shapeOf(m.Shape)
			switch ms.Type {
			case "structure":
				var inner []string
				for _, im := range ms.Members {
					inner = append(inner, im.Name+"="+shapeOf(im.Shape).Type)
				}
				parts = append(parts, m.Name+"={"+strings.Join(inner, ",")+"}")
			case "map":
				parts = append(parts, m.Name+"={KeyName1=string,KeyName2=string}")
			case "list":
				parts = append(parts, m.Name+"="+shapeOf(ms.Member).Type+","+shapeOf(ms.Member).Type)
			default:
				parts = append(parts, m.Name+"="+ms.Type)
			}
		}
		return strings.Join(parts, ",")
	}
	return s.Type
}

func wrap(text string, width int) string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		var line string
		var lines []string
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		if line != "" {
			lines = append(lines, line)
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

func indent(text string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
