package mysql

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxPayload is the largest payload of one wire packet; a message of this
// size or more continues in the next packet (the last one is shorter,
// possibly empty).
const maxPayload = 1<<24 - 1

// DefaultMaxMessage bounds a client command Bastion reads whole to check it
// (a query, a prepared statement's long data): 64 MiB, four times
// MariaDB's default max_allowed_packet, several wire packets.
const DefaultMaxMessage = 64 << 20

// Bounds on the client message buffer of a connection, which holds one
// message (up to the limit the caller gives readMessage).
const (
	// readChunk is how much the buffer grows by before the bytes to fill
	// it have come.
	readChunk = 64 << 10
	// maxRetained is the largest buffer kept between messages; a larger one
	// is let go when the next message is read.
	maxRetained = 1 << 20
)

// errTooLarge is returned for a message over the limit.
var errTooLarge = errors.New("mysql: message too large")

// packetReader reads MySQL packets. Its buffer is reused: a payload is
// valid until the next read.
type packetReader struct {
	r   *bufio.Reader
	buf []byte
	seq byte // the sequence number of the last packet read
}

func newPacketReader(r io.Reader, size int) *packetReader {
	return &packetReader{r: bufio.NewReaderSize(r, size)}
}

// header reads a packet header: the payload's length and sequence number.
func (p *packetReader) header() (int, byte, error) {
	h, err := p.r.Peek(4)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	n, seq := int(h[0])|int(h[1])<<8|int(h[2])<<16, h[3]
	p.r.Discard(4)
	p.seq = seq
	return n, seq, nil
}

// readMessage reads one message, joining the packets of a payload of
// maxPayload bytes or more, up to max bytes. It returns the payload and the
// sequence number of its first packet.
func (p *packetReader) readMessage(max int) ([]byte, byte, error) {
	if cap(p.buf) > maxRetained {
		p.buf = nil // not kept by a connection that waits for its next message
	}
	p.buf = p.buf[:0]
	var first byte
	for i := 0; ; i++ {
		n, seq, err := p.header()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, err
		}
		if i == 0 {
			first = seq
		} else if seq != first+byte(i) {
			return nil, 0, fmt.Errorf("%w: packet %d of a message numbered %d, want %d", errSequence, i+1, seq, first+byte(i))
		}
		if len(p.buf)+n > max {
			return nil, 0, fmt.Errorf("%w: over %d bytes", errTooLarge, max)
		}
		// The buffer grows as the payload comes, not as the header
		// announces it: four bytes must not cost Bastion maxPayload.
		for left := n; left > 0; {
			k := min(left, readChunk)
			start := len(p.buf)
			p.buf = slices.Grow(p.buf, k)[:start+k]
			if _, err := io.ReadFull(p.r, p.buf[start:]); err != nil {
				return nil, 0, noEOF(err)
			}
			left -= k
		}
		if n < maxPayload {
			return p.buf, first, nil
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// packetWriter writes MySQL packets through a buffer; Flush sends them.
type packetWriter struct {
	w   *bufio.Writer
	seq byte // the sequence number of the next packet
}

func newPacketWriter(w io.Writer, size int) *packetWriter {
	return &packetWriter{w: bufio.NewWriterSize(w, size)}
}

// writeMessage writes payload as one message, split into packets as the
// protocol requires, numbered from pw.seq on.
func (pw *packetWriter) writeMessage(payload []byte) error {
	for {
		n := min(len(payload), maxPayload)
		if err := writeHeader(pw.w, n, pw.seq); err != nil {
			return err
		}
		pw.seq++
		if _, err := pw.w.Write(payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if n < maxPayload {
			return nil
		}
	}
}

// writeHeader writes a packet header (without allocating).
func writeHeader(w *bufio.Writer, n int, seq byte) error {
	if w.Available() < 4 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(append(w.AvailableBuffer(), byte(n), byte(n>>8), byte(n>>16), seq))
	return err
}

// send writes payload as one message with sequence number seq and flushes.
func (pw *packetWriter) send(seq byte, payload []byte) error {
	pw.seq = seq
	if err := pw.writeMessage(payload); err != nil {
		return err
	}
	return pw.w.Flush()
}

// Length-encoded integers and strings (the protocol's "lenenc").

func readLenEnc(b []byte) (v uint64, size int, null bool, ok bool) {
	if len(b) == 0 {
		return 0, 0, false, false
	}
	switch b[0] {
	case 0xfb:
		return 0, 1, true, true
	case 0xfc:
		if len(b) < 3 {
			return 0, 0, false, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, false, true
	case 0xfd:
		if len(b) < 4 {
			return 0, 0, false, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, false, true
	case 0xfe:
		if len(b) < 9 {
			return 0, 0, false, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, false, true
	case 0xff:
		return 0, 0, false, false
	}
	return uint64(b[0]), 1, false, true
}

func appendLenEnc(b []byte, v uint64) []byte {
	switch {
	case v < 251:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
}

// readLenEncString returns a length-encoded string at the start of b and
// the bytes it took.
func readLenEncString(b []byte) ([]byte, int, bool) {
	n, size, null, ok := readLenEnc(b)
	if !ok || null {
		return nil, size, ok && null
	}
	if uint64(len(b)-size) < n {
		return nil, 0, false
	}
	return b[size : size+int(n)], size + int(n), true
}

// readNulString returns the NUL-terminated string at the start of b and the
// bytes it took, NUL included.
func readNulString(b []byte) ([]byte, int, bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], i + 1, true
		}
	}
	return nil, 0, false
}
