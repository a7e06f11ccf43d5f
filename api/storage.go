package api

import (
	"context"

	"github.com/ivsrt/ivsrt"
)

// BucketChecker tells whether recordings can be written to a bucket.
type BucketChecker interface {
	// CheckBucket returns why objects cannot be written to bucket, or nil:
	// it must exist and take writes.
	CheckBucket(ctx context.Context, bucket string) error
}

// WithBucketChecker has CreateStorageConfiguration refuse, as AWS does, a
// bucket that does not exist or cannot be written to. Without one any
// well-formed bucket name is taken.
func WithBucketChecker(c BucketChecker) Option { return func(s *Server) { s.buckets = c } }

func storageFromDomain(sc *ivsrt.StorageConfiguration) storageConfigurationWire {
	tags := sc.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return storageConfigurationWire{
		Arn:  string(sc.ARN),
		Name: sc.Name,
		S3:   &s3StorageWire{BucketName: sc.S3BucketName},
		Tags: tags,
	}
}

func storageNotFound(err error, arn string) error {
	return notFound(err, "Storage configuration not found: %s", arn)
}

type createStorageConfigurationInput struct {
	Name *string           `json:"name"`
	S3   *s3StorageInput   `json:"s3"`
	Tags map[string]string `json:"tags"`
}

type storageConfigurationOutput struct {
	StorageConfiguration storageConfigurationWire `json:"storageConfiguration"`
}

func (s *Server) createStorageConfiguration(ctx context.Context, body []byte) (any, error) {
	var in createStorageConfigurationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if in.Name != nil {
		v.StorageConfigurationName("name", *in.Name)
	}
	if v.Required("s3", in.S3 != nil) && v.Required("s3.bucketName", in.S3.BucketName != nil) {
		v.S3BucketName("s3.bucketName", *in.S3.BucketName)
	}
	v.Tags("tags", in.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	bucket := *in.S3.BucketName
	if s.buckets != nil {
		if err := s.buckets.CheckBucket(ctx, bucket); err != nil {
			return nil, s.bucketRefused(ctx, bucket, err)
		}
	}
	sc := &ivsrt.StorageConfiguration{
		ARN:          ivsrt.NewStorageConfigurationARN(s.cfg.Region, s.cfg.AccountID, ivsrt.NewStorageConfigurationID()),
		Name:         deref(in.Name),
		S3BucketName: bucket,
		Tags:         in.Tags,
	}
	if err := s.store.CreateStorageConfiguration(ctx, sc); err != nil {
		return nil, err
	}
	return storageConfigurationOutput{StorageConfiguration: storageFromDomain(sc)}, nil
}

// bucketRefused words a failed bucket check as a ValidationException. AWS
// does not document its message; this one names the bucket and says what
// is wrong with it. The checker's own reason is added when it is safe to
// show (an *ivsrt.Error), and logged otherwise: it may name the storage
// service's endpoint or credentials.
func (s *Server) bucketRefused(ctx context.Context, bucket string, err error) error {
	msg := "The S3 bucket '" + bucket + "' does not exist or is not writable"
	if ivsrt.ErrorCode(err) != ivsrt.EINTERNAL {
		return ivsrt.Errorf(ivsrt.EINVALID, "%s: %s", msg, ivsrt.ErrorMessage(err))
	}
	s.logger.WarnContext(ctx, "bucket check failed", "bucket", bucket, "err", err)
	return ivsrt.Errorf(ivsrt.EINVALID, "%s.", msg)
}

type storageConfigurationARNInput struct {
	Arn *string `json:"arn"`
}

func (in storageConfigurationARNInput) validate() error {
	var v ivsrt.Validation
	if v.Required("arn", in.Arn != nil) {
		v.StorageConfigurationARN("arn", *in.Arn)
	}
	return v.Err()
}

func (s *Server) getStorageConfiguration(ctx context.Context, body []byte) (any, error) {
	var in storageConfigurationARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	sc, err := s.store.GetStorageConfiguration(ctx, ivsrt.StorageConfigurationARN(*in.Arn))
	if err != nil {
		return nil, storageNotFound(err, *in.Arn)
	}
	return storageConfigurationOutput{StorageConfiguration: storageFromDomain(sc)}, nil
}

func (s *Server) deleteStorageConfiguration(ctx context.Context, body []byte) (any, error) {
	var in storageConfigurationARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := s.store.DeleteStorageConfiguration(ctx, ivsrt.StorageConfigurationARN(*in.Arn)); err != nil {
		return nil, storageNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listStorageConfigurationsOutput struct {
	StorageConfigurations []storageConfigurationWire `json:"storageConfigurations"`
	NextToken             string                     `json:"nextToken,omitempty"`
}

func (s *Server) listStorageConfigurations(ctx context.Context, body []byte) (any, error) {
	scs, next, err := listPage(ctx, s, body, "ListStorageConfigurations", ivsrt.DefaultStorageConfigurationPageSize,
		s.store.ListStorageConfigurations, storageFromDomain)
	if err != nil {
		return nil, err
	}
	return listStorageConfigurationsOutput{StorageConfigurations: scs, NextToken: next}, nil
}
