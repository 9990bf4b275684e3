package transfer

import "testing"

// The decoders sit on every byte of a transfer: these measure their cost
// on real captures (whole chunks as the proxy would hand them over).
func BenchmarkSFTP(b *testing.B) { benchCapture(b, "sftp-session") }

func BenchmarkSCP(b *testing.B) { benchCapture(b, "scp-download-file") }

func benchCapture(b *testing.B, name string) {
	command, recs := readCapture(b, name)
	var size int64
	for _, r := range recs {
		size += int64(len(r.data))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		replay(newDecoder(b, command, func(Event) {}), recs, 0)
	}
}
