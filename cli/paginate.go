package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// paginators are the list operations the CLI pages through by itself, as
// the aws CLI does for operations with a paginator: all pages are fetched
// and their items printed as one list, unless --no-paginate, --next-token
// or --max-results is given. Each names its result key; the input and
// output tokens are nextToken, the limit key maxResults.
var paginators = map[string]string{
	"ListStages":            "stages",
	"ListStageSessions":     "stageSessions",
	"ListParticipants":      "participants",
	"ListParticipantEvents": "events",

	"ListStorageConfigurations": "storageConfigurations",
	"ListPublicKeys":            "publicKeys",
	"ListParticipantReplicas":   "replicas",
	"ListIngestConfigurations":  "ingestConfigurations",
	"ListEncoderConfigurations": "encoderConfigurations",
	"ListCompositions":          "compositions",
}

// page is one response of a paginated call, shaped as botocore parses it.
type page = *object

// paginate calls a paginated operation page after page as botocore's
// PageIterator does, with its --starting-token, --page-size and
// --max-items rules, and returns the pages (the first and last may be
// cut to the items asked for) and the resume token for the next command,
// if --max-items stopped it early.
func paginate(ctx context.Context, c *ivsrealtime.Client, op *operation, input *object, pa pageArgs) ([]page, string, error) {
	resultKey := paginators[op.Name]
	outShape := shapeOf(op.Output)
	kwargs := newObject()
	for _, k := range input.keys {
		if k != "nextToken" && k != "maxResults" {
			kwargs.set(k, input.vals[k])
		}
	}
	if pa.pageSizeSet {
		// botocore validates the page size with the request it goes in,
		// as an error of the call (exit 255), not of the command line.
		kwargs.set("maxResults", json.Number(strconv.FormatInt(pa.pageSize, 10)))
		if errs := validate(shapeOf(op.Input), kwargs, "input", ""); len(errs) > 0 {
			return nil, "", fmt.Errorf("Parameter validation failed:\n%s", strings.Join(errs, "\n"))
		}
	}
	var nextToken *string // the token of the request being made
	startTrunc := 0
	if pa.startingToken != "" {
		tok, index, err := parseStartingToken(pa.startingToken)
		if err != nil {
			return nil, "", err
		}
		nextToken, startTrunc = tok, index
	}
	var pages []page
	total := 0
	first := true
	var previous *string
	for {
		if nextToken != nil {
			kwargs.set("nextToken", *nextToken)
		} else {
			kwargs.del("nextToken")
		}
		v, err := call(ctx, c, op, kwargs)
		if err != nil {
			return nil, "", err
		}
		p, _ := shapeOutput(outShape, v).(*object)
		if p == nil {
			p = newObject()
		}
		items, _ := p.vals[resultKey].([]any)
		if first && pa.startingToken != "" {
			if startTrunc > len(items) {
				startTrunc = len(items)
			}
			items = items[startTrunc:]
			p.set(resultKey, items)
		} else if !first {
			startTrunc = 0
		}
		first = false
		truncate := 0
		if pa.maxItems > 0 {
			truncate = total + len(items) - int(pa.maxItems)
		}
		if truncate > 0 {
			keep := len(items) - truncate
			p.set(resultKey, items[:keep])
			pages = append(pages, p)
			return pages, encodeResumeToken(nextToken, keep+startTrunc, true), nil
		}
		pages = append(pages, p)
		total += len(items)
		tv, _ := p.vals["nextToken"].(string)
		p.del("nextToken")
		if tv == "" {
			return pages, "", nil
		}
		next := tv
		if pa.maxItems > 0 && int64(total) == pa.maxItems {
			return pages, encodeResumeToken(&next, 0, false), nil
		}
		if previous != nil && *previous == next {
			return nil, "", fmt.Errorf("The same next token was received twice: {'nextToken': '%s'}", next)
		}
		nextToken, previous = &next, &next
	}
}

// fullResult merges pages into one response as botocore's
// build_full_result does: the result key's items of every page, then
// NextToken when --max-items stopped early.
func fullResult(op *operation, pages []page, resume string) *object {
	resultKey := paginators[op.Name]
	out := newObject()
	var all []any
	have := false
	for _, p := range pages {
		if items, ok := p.vals[resultKey].([]any); ok {
			all = append(all, items...)
			have = true
		}
	}
	if have {
		if all == nil {
			all = []any{}
		}
		out.set(resultKey, all)
	}
	if len(pages) > 0 {
		for _, k := range pages[0].keys {
			if k != resultKey && k != "nextToken" {
				out.set(k, pages[0].vals[k])
			}
		}
	}
	if resume != "" {
		out.set("NextToken", resume)
	}
	return out
}

// encodeResumeToken writes a token for --starting-token as botocore does:
// base64 of the JSON {"nextToken": ..., "boto_truncate_amount": n}, so
// that tokens of the aws CLI and of ivsrt are interchangeable.
func encodeResumeToken(next *string, truncate int, truncated bool) string {
	var b strings.Builder
	b.WriteString(`{"nextToken": `)
	if next == nil {
		b.WriteString("null")
	} else {
		q, _ := json.Marshal(*next)
		b.Write(q)
	}
	if truncated {
		fmt.Fprintf(&b, `, "boto_truncate_amount": %d`, truncate)
	}
	b.WriteString("}")
	return base64.StdEncoding.EncodeToString([]byte(b.String()))
}

// parseStartingToken reads a --starting-token: one this CLI or the aws CLI
// printed, or the older "token___N" form, or a bare token of the server.
func parseStartingToken(s string) (*string, int, error) {
	if data, err := base64.StdEncoding.DecodeString(s); err == nil {
		var t map[string]any
		if json.Unmarshal(data, &t) == nil && t != nil {
			index := 0
			if n, ok := t["boto_truncate_amount"].(float64); ok {
				index = int(n)
			}
			if tok, ok := t["nextToken"].(string); ok {
				return &tok, index, nil
			}
			return nil, index, nil
		}
	}
	if tok, n, ok := strings.Cut(s, "___"); ok {
		index, err := strconv.Atoi(n)
		if err != nil {
			return nil, 0, &usageError{fmt.Sprintf("Bad starting token: %s", s)}
		}
		return &tok, index, nil
	}
	return &s, 0, nil
}
