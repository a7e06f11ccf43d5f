package api

import (
	"net/http"
	"net/url"

	"github.com/ivsrt/ivsrt"
)

type tagResourceInput struct {
	Tags map[string]string `json:"tags"`
}

type listTagsOutput struct {
	Tags map[string]string `json:"tags"`
}

// serveTags answers TagResource (POST), UntagResource (DELETE) and
// ListTagsForResource (GET) on /tags/{resourceArn}. escapedARN is the path
// as sent: the ARN's "/" arrives as %2F and must not split the path.
func (s *Server) serveTags(r *http.Request, escapedARN string, body []byte) (any, error) {
	arn, err := url.PathUnescape(escapedARN)
	if err != nil {
		return nil, ivsrt.Errorf(ivsrt.EINVALID, "1 validation error detected: Value at 'resourceArn' failed to satisfy constraint: Member must be a percent-encoded ARN")
	}
	// The model's ResourceArn pattern cannot match any ARN of a real
	// resource; the patterns of the taggable kinds (see
	// ivsrt.Validation.ResourceARN) are the right check.
	var v ivsrt.Validation
	v.ResourceARN("resourceArn", arn)
	ctx := r.Context()
	notFoundARN := func(err error) error { return notFound(err, "Resource not found: %s", arn) }

	switch r.Method {
	case http.MethodGet:
		if err := v.Err(); err != nil {
			return nil, err
		}
		tags, err := s.store.ListTags(ctx, arn)
		if err != nil {
			return nil, notFoundARN(err)
		}
		return listTagsOutput{Tags: tags}, nil

	case http.MethodPost:
		var in tagResourceInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		if v.Required("tags", in.Tags != nil) {
			v.Tags("tags", in.Tags)
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		return struct{}{}, notFoundARN(s.store.TagResource(ctx, arn, in.Tags))

	case http.MethodDelete:
		keys, present := r.URL.Query()["tagKeys"]
		if v.Required("tagKeys", present) {
			if len(keys) > ivsrt.MaxTagsPerResource {
				v.Fail("Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to %d", ivsrt.MaxTagsPerResource)
			}
			for _, k := range keys {
				v.TagKey("tagKeys.member", k)
			}
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		return struct{}{}, notFoundARN(s.store.UntagResource(ctx, arn, keys))
	}
	return nil, ivsrt.Errorf(ivsrt.EINVALID, "Method %s is not allowed on tags.", r.Method)
}
