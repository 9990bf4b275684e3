package mysql

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestReadMessageGrowsWithData: a header that announces a full packet
// costs the reader what came of it, not the 16 MiB announced.
func TestReadMessageGrowsWithData(t *testing.T) {
	in := append([]byte{0xff, 0xff, 0xff, 0}, "SELECT"...) // maxPayload announced, 6 bytes sent
	r := newPacketReader(bytes.NewReader(in), ioBuffer)
	if _, _, err := r.readMessage(DefaultMaxMessage); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated packet: %v", err)
	}
	if cap(r.buf) > readChunk {
		t.Fatalf("buffer of %d bytes for a packet of 6", cap(r.buf))
	}
}

// TestReadMessageLetsGo: a large message is read whole, and its buffer is
// not kept once the next message is read.
func TestReadMessageLetsGo(t *testing.T) {
	var in []byte
	big := bytes.Repeat([]byte{'x'}, maxPayload+10)
	in = append(in, 0xff, 0xff, 0xff, 0)
	in = append(in, big[:maxPayload]...)
	in = append(in, 10, 0, 0, 1)
	in = append(in, big[maxPayload:]...)
	in = append(in, 1, 0, 0, 0, comPing)
	r := newPacketReader(bytes.NewReader(in), ioBuffer)
	p, _, err := r.readMessage(DefaultMaxMessage)
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("large message: %d bytes, %v", len(p), err)
	}
	p, _, err = r.readMessage(DefaultMaxMessage)
	if err != nil || !bytes.Equal(p, []byte{comPing}) {
		t.Fatalf("next message: %q, %v", p, err)
	}
	if cap(r.buf) > maxRetained {
		t.Fatalf("kept a buffer of %d bytes after a large message", cap(r.buf))
	}
}
