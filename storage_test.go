package ivsrt

import (
	"regexp"
	"strings"
	"testing"
)

func TestStorageConfigurationARN(t *testing.T) {
	id := NewStorageConfigurationID()
	if !regexp.MustCompile(`^[a-zA-Z0-9]{12}$`).MatchString(id) {
		t.Errorf("NewStorageConfigurationID: got %q, want 12 of [a-zA-Z0-9]", id)
	}
	arn := NewStorageConfigurationARN("eu-west-1", "210987654321", id)
	if want := "arn:aws:ivs:eu-west-1:210987654321:storage-configuration/" + id; string(arn) != want {
		t.Errorf("NewStorageConfigurationARN: got %q, want %q", arn, want)
	}
	if got := arn.ID(); got != id {
		t.Errorf("ID: got %q, want %q", got, id)
	}
	if got := StorageConfigurationARN(NewStageARN("eu-west-1", "210987654321", id)).ID(); got != "" {
		t.Errorf("ID of a stage ARN: got %q, want \"\"", got)
	}
}

func TestStorageValidation(t *testing.T) {
	tests := []struct {
		name  string
		check func(v *Validation) bool
		want  string // "" when valid
	}{
		{"name", func(v *Validation) bool { return v.StorageConfigurationName("name", "archive_1-a") }, ""},
		{"empty name", func(v *Validation) bool { return v.StorageConfigurationName("name", "") }, ""},
		{"name pattern", func(v *Validation) bool { return v.StorageConfigurationName("name", "a b") },
			"Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"name 129", func(v *Validation) bool { return v.StorageConfigurationName("name", strings.Repeat("a", 129)) },
			"Member must have length less than or equal to 128"},
		{"bucket", func(v *Validation) bool { return v.S3BucketName("s3.bucketName", "my-bucket.1") }, ""},
		{"bucket 2", func(v *Validation) bool { return v.S3BucketName("s3.bucketName", "ab") },
			"at 's3.bucketName' failed to satisfy constraint: Member must have length greater than or equal to 3"},
		{"bucket 64", func(v *Validation) bool { return v.S3BucketName("s3.bucketName", strings.Repeat("a", 64)) },
			"Member must have length less than or equal to 63"},
		{"bucket upper case", func(v *Validation) bool { return v.S3BucketName("s3.bucketName", "MyBucket") },
			"Member must satisfy regular expression pattern: [a-z0-9-.]+"},
		{"arn", func(v *Validation) bool {
			return v.StorageConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abc")
		}, ""},
		{"arn of a stage", func(v *Validation) bool {
			return v.StorageConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+"},
		{"resource stage", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, ""},
		{"resource storage configuration", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abc")
		}, ""},
		{"resource composition", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:composition/abcDEF123456")
		}, ""},
		{"resource channel", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+ or " +
			"arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+"},
		{"resource channel names the composition pattern", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, " or arn:aws:ivs:[a-z0-9-]+:[0-9]+:composition/[a-zA-Z0-9-]+"},
		{"resource empty", func(v *Validation) bool { return v.ResourceARN("resourceArn", "") },
			"Member must have length greater than or equal to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Validation
			ok := tt.check(&v)
			err := v.Err()
			if ok != (tt.want == "") || (err == nil) != ok {
				t.Fatalf("got ok %v, error %v, want ok %v", ok, err, tt.want == "")
			}
			if err != nil && !strings.Contains(ErrorMessage(err), tt.want) {
				t.Errorf("message: got %q, want it to contain %q", ErrorMessage(err), tt.want)
			}
		})
	}
}
