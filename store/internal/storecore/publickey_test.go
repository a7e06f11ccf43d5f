package storecore

import (
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestCheckPublicKeyQuota(t *testing.T) {
	tests := []struct {
		quota ivsrt.PublicKeyQuota
		keys  int
		want  string
	}{
		{ivsrt.PublicKeyQuota{}, 1000, ""},
		{ivsrt.PublicKeyQuota{MaxPublicKeys: 2}, 1, ""},
		{ivsrt.PublicKeyQuota{MaxPublicKeys: 2}, 2, ivsrt.EQUOTA},
		{ivsrt.PublicKeyQuota{MaxPublicKeys: 2}, 3, ivsrt.EQUOTA},
	}
	for _, tt := range tests {
		if got := ivsrt.ErrorCode(CheckPublicKeyQuota(tt.quota, tt.keys)); got != tt.want {
			t.Errorf("CheckPublicKeyQuota(%+v, %d): got %q, want %q", tt.quota, tt.keys, got, tt.want)
		}
	}
}
