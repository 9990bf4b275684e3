package replay_test

import (
	"bytes"
	"math"
	"testing"
	"unicode"

	"github.com/bastionhq/bastion/recorder/replay"
)

// FuzzTranscript prints arbitrary query logs: whatever a user managed to put
// in a statement, the transcript shown to an auditor holds no character a
// terminal would act on, other than newlines and tabs.
func FuzzTranscript(f *testing.F) {
	f.Add([]byte(`{"time":"2031-03-04T05:06:07Z","type":"start","user":"u\u001b[2J","target":"t","protocol":"mysql"}` + "\n" +
		`{"time":"2031-03-04T05:06:08Z","type":"query","statement":"SELECT '\u009b31m\u202e'\r\n","params":["\u0007"],"decision":"allow","error":"\u0000"}` + "\n"))
	f.Add([]byte(`{"time":"2031-03-04T05:06:07Z","type":"end","reason":"\u2028\u2029\ufeff"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		_ = replay.Transcript(t.Context(), bytes.NewReader(data), &out, replay.Options{Speed: math.Inf(1)}) // bad input is fine; the output is checked
		for _, r := range out.String() {
			if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
				t.Fatalf("transcript holds %U:\n%q", r, out.String())
			}
		}
	})
}
