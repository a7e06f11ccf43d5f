package ivsrt

import "context"

// ObjectStore is where recordings go: an S3 bucket, or a folder standing
// in for one, holding exactly the objects S3 would.
type ObjectStore interface {
	// CheckBucket returns why objects cannot be written to bucket, or
	// nil: it must exist and take writes.
	CheckBucket(ctx context.Context, bucket string) error

	// PutObject writes the whole object at key in bucket, replacing any
	// there; a reader sees the old object or the new, never a part.
	PutObject(ctx context.Context, bucket, key string, body []byte, contentType string) error

	// GetObject returns the object at key in bucket and its content
	// type; an *Error with ENOTFOUND when there is none.
	GetObject(ctx context.Context, bucket, key string) (body []byte, contentType string, err error)
}
