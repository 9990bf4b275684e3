package transfer

import "testing"

// The decoders sit on every byte of a transfer: these measure their cost
// on real captures (whole chunks as the proxy would hand them over).
func BenchmarkSFTP(b *testing.B) { benchCapture(b, "sftp-session") }

func BenchmarkSCP(b *testing.B) { benchCapture(b, "scp-download-file") }

func benchCapture(b *testing.B, name string) {
	command, recs := loadBench(b, name)
	for b.Loop() {
		replay(newDecoder(b, command, func(Event) {}), recs, 0)
	}
}

// BenchmarkSFTPGate measures the gate on a real session (it sits on every
// byte of a transfer under file rules), allowing everything.
func BenchmarkSFTPGate(b *testing.B) {
	_, recs := loadBench(b, "sftp-session")
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

// loadBench reads a capture and reports its size as the bytes of one op.
func loadBench(b *testing.B, name string) (string, []record) {
	command, recs := readCapture(b, name)
	var size int64
	for _, r := range recs {
		size += int64(len(r.data))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	return command, recs
}
