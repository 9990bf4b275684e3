package mysql

import (
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

func TestTableCase(t *testing.T) {
	tests := []struct {
		value string
		want  policy.TableCase
	}{
		{"0", policy.TablesExactCase},
		{" 0\n", policy.TablesExactCase},
		{"1", policy.TablesAnyCase},
		{"2", policy.TablesAnyCase},
		{"", policy.TablesAnyCase},
		{"x", policy.TablesAnyCase},
	}
	for _, tt := range tests {
		if got := tableCase(tt.value); got != tt.want {
			t.Errorf("tableCase(%q) = %d, want %d", tt.value, got, tt.want)
		}
	}
}
