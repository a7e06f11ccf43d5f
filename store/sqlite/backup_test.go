package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// TestBackupWhileWriting: a backup taken while stages are being created
// opens as a database holding a consistent prefix of them.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var created atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			arn := ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/backup" + time.Now().Format("150405.000000000"))
			if err := db.CreateStage(ctx, &ivsrt.Stage{ARN: arn, Name: "s"}, nil, ivsrt.StageQuota{}); err != nil {
				t.Error(err)
				return
			}
			created.Add(1)
		}
	})
	for created.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	dst := filepath.Join(dir, "copy.db")
	if err := Backup(ctx, db.Path(), dst); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	copy, err := Open(ctx, dst)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer copy.Close()
	stages, _, err := copy.ListStages(ctx, ivsrt.Page{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(stages)); n < 50 || n > created.Load() {
		t.Errorf("the backup holds %d stages; %d were created, at least 50 before it began", n, created.Load())
	}
	if err := Backup(ctx, db.Path(), dst); err == nil {
		t.Error("a backup over an existing file succeeded")
	}
}
