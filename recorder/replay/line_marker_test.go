package replay_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/bastionhq/bastion/recorder/asciicast"
	"github.com/bastionhq/bastion/recorder/replay"
)

// TestPlayLineMarkers: the line markers of a fail-closed shell (what each
// typed line or paste ran) replay as "[bastion] line: …", a pasted line's
// newlines and control characters escaped so that a marker stays one line.
func TestPlayLineMarkers(t *testing.T) {
	tests := []struct {
		name, label, want string
	}{
		{"typed", "line: echo one", "[bastion] line: echo one\r\n"},
		{"pasted", "line: echo p1\necho p2", "[bastion] line: echo p1\\necho p2\r\n"},
		{"control characters", "line: printf '\x1b[2J'\r", "[bastion] line: printf '\\x1b[2J'\\r\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := cast(t, asciicast.Event{Time: 0, Type: "m", Data: tt.label})
			var out bytes.Buffer
			if err := replay.Play(t.Context(), bytes.NewReader(rec), &out, replay.Options{Speed: math.Inf(1), Markers: true}); err != nil {
				t.Fatalf("Play: %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
		})
	}
}
