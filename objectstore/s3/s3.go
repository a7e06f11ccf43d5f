// Package s3 keeps objects in an S3-compatible service (AWS S3, MinIO,
// Ceph...) through aws-sdk-go-v2's S3 client, addressing buckets in path
// style so that any endpoint works.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/ivsrt/ivsrt"
)

// Config says where the service is and how to sign for it.
type Config struct {
	EndpointURL string // e.g. http://127.0.0.1:9000
	Region      string // signing region; us-east-1 when empty
	// Static keys; when empty, the standard AWS chain (environment,
	// shared files) is used.
	AccessKeyID, SecretAccessKey string
	// Credentials, when set, wins over the static keys and the chain.
	Credentials aws.CredentialsProvider
}

// Store is an S3-compatible service.
type Store struct {
	client *awss3.Client
}

var _ ivsrt.ObjectStore = (*Store)(nil)

// New returns the store of the service cfg names.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.EndpointURL == "" {
		return nil, errors.New("s3: no endpoint URL")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	creds := cfg.Credentials
	if creds == nil && cfg.AccessKeyID != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	}
	if creds == nil {
		chain, err := defaultCredentials(ctx)
		if err != nil {
			return nil, err
		}
		creds = chain
	}
	client := awss3.New(awss3.Options{
		Region:       region,
		BaseEndpoint: aws.String(cfg.EndpointURL),
		UsePathStyle: true,
		Credentials:  creds,
		// Checksums are computed only where the operation requires them:
		// S3-compatible services vary in what they accept.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return &Store{client: client}, nil
}

// writeCheckKey is the object CheckBucket writes and deletes.
const writeCheckKey = ".ivsrt-write-check"

// CheckBucket implements ivsrt.ObjectStore: the bucket must exist, and an
// object written there (and deleted at once) must be taken.
func (s *Store) CheckBucket(ctx context.Context, bucket string) error {
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, describe(err))
	}
	if err := s.PutObject(ctx, bucket, writeCheckKey, nil, "text/plain"); err != nil {
		return fmt.Errorf("bucket %s cannot be written: %w", bucket, err)
	}
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(writeCheckKey)}); err != nil {
		return fmt.Errorf("bucket %s: delete the write check: %w", bucket, describe(err))
	}
	return nil
}

// PutObject implements ivsrt.ObjectStore.
func (s *Store) PutObject(ctx context.Context, bucket, key string, body []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, describe(err))
	}
	return nil
}

// GetObject implements ivsrt.ObjectStore.
func (s *Store) GetObject(ctx context.Context, bucket, key string) ([]byte, string, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var missing *types.NoSuchKey
		var ae smithy.APIError
		if errors.As(err, &missing) || (errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NoSuchBucket" || ae.ErrorCode() == "NotFound")) {
			return nil, "", ivsrt.Errorf(ivsrt.ENOTFOUND, "no object %s in bucket %s", key, bucket)
		}
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", bucket, key, describe(err))
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	return body, aws.ToString(out.ContentType), nil
}

// describe shortens the SDK's errors to the service's code and message.
func describe(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// defaultCredentials returns the standard AWS chain: the environment, the
// shared config and credentials files, SSO, then the instance's role.
func defaultCredentials(ctx context.Context) (aws.CredentialsProvider, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS credentials: %w", err)
	}
	return cfg.Credentials, nil
}
