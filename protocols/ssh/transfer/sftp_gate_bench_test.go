package transfer

import "testing"

// BenchmarkSFTPGate measures the gate on a real session (it sits on every
// byte of a transfer under file rules), allowing everything.
func BenchmarkSFTPGate(b *testing.B) {
	_, recs := readCapture(b, "sftp-session")
	var size int64
	for _, r := range recs {
		size += int64(len(r.data))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		g := NewSFTPGate(func(Request) string { return "" })
		for _, r := range recs {
			var err error
			if r.dir == '>' {
				_, err = g.FromClient(r.data)
			} else {
				_, err = g.FromServer(r.data)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
