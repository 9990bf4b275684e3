package mysql

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
)

// result is what one result of a response came to, for the recording.
type result struct {
	rows   int64 // rows returned, or affected
	err    string
	status uint16
	// mode is the sql_mode an OK packet reports (modeSeen); modeBad when
	// its session state could not be read.
	mode              string
	modeSeen, modeBad bool
}

// msgLocalInfile refuses LOAD DATA LOCAL INFILE (and a LOCAL INFILE request
// from the target, which Bastion never enables).
const (
	msgLocalInfile = "LOAD DATA LOCAL INFILE is not allowed through Bastion"
	errLocalInfile = "bastion: " + msgLocalInfile
)

// forward sends a client message upstream unchanged (re-split into packets
// as it came), numbered from seq.
func (c *clientConn) forward(seq byte, payload []byte) error {
	if err := c.up.w.send(seq, payload); err != nil {
		return fmt.Errorf("to target: %w", err)
	}
	return nil
}

// copyN copies n bytes from r to w through their buffers, allocating
// nothing.
func copyN(w *bufio.Writer, r *bufio.Reader, n int) error {
	for n > 0 {
		b, err := r.Peek(min(n, r.Size()))
		if len(b) == 0 {
			return noEOF(err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if _, err := r.Discard(len(b)); err != nil {
			return err
		}
		n -= len(b)
	}
	return nil
}

// packet reads the header of the target's next packet and, when it is small
// (below max bytes), its payload too (valid until the next read). For a
// larger packet, body is nil and the payload is still to be copied.
func (c *clientConn) packet(max int) (n int, seq byte, first byte, body []byte, err error) {
	r := c.up.r
	n, seq, err = r.header()
	if err != nil {
		return 0, 0, 0, nil, noEOF(err)
	}
	if n == 0 {
		return 0, seq, 0, r.buf[:0], nil
	}
	b, err := r.r.Peek(1)
	if err != nil {
		return 0, 0, 0, nil, noEOF(err)
	}
	first = b[0]
	if n <= max || ((first == iEOF || first == iERR) && n <= smallPacket) {
		b, err := r.r.Peek(n)
		if err != nil {
			return 0, 0, 0, nil, noEOF(err)
		}
		r.buf = append(r.buf[:0], b...)
		if _, err := r.r.Discard(n); err != nil {
			return 0, 0, 0, nil, err
		}
		return n, seq, first, r.buf, nil
	}
	return n, seq, first, nil, nil
}

// pass writes to the client the packet just read by packet, copying its
// payload from the target when it was not read.
func (c *clientConn) pass(n int, seq byte, body []byte) error {
	w := c.w.w
	if err := writeHeader(w, n, seq); err != nil {
		return err
	}
	if body != nil {
		_, err := w.Write(body)
		return err
	}
	return copyN(w, c.up.r.r, n)
}

// smallPacket is the size up to which OK, ERR and EOF packets and column
// counts are read whole (an OK packet may carry session state changes).
const smallPacket = ioBuffer

// isEnd reports whether a packet ends a result set's rows (or column
// definitions): an EOF packet, or with CLIENT_DEPRECATE_EOF an OK packet
// with the EOF header.
func (c *clientConn) isEnd(n int, first byte) bool {
	if first != iEOF {
		return false
	}
	if c.caps&capDeprecateEOF != 0 {
		return n < maxPayload
	}
	return n < 9
}

// endStatus reads the status flags of a packet that isEnd.
func (c *clientConn) endStatus(body []byte) uint16 {
	if c.caps&capDeprecateEOF != 0 && len(body) > 5 {
		_, st, ok := okInfo(body)
		if ok {
			return st
		}
	}
	return eofStatus(body)
}

// relayResponse relays the target's response to a query or an executed
// statement to the client: OK, ERR, or result sets, as many as the target
// says follow. Rows are copied through buffers as they come. Each result
// is reported to each. The client's buffer is flushed at the end.
func (c *clientConn) relayResponse(each func(result)) error {
	for {
		n, seq, first, body, err := c.packet(smallPacket)
		if err != nil {
			return err
		}
		switch {
		case body != nil && first == iOK && n >= 7:
			affected, status, _ := okInfo(body)
			r := result{rows: int64(affected), status: status}
			c.noteMode(&r, body)
			body = c.toClient(body)
			if err := c.pass(len(body), seq, body); err != nil {
				return err
			}
			each(r)
			if status&statusMoreResults == 0 {
				return c.w.w.Flush()
			}
		case body != nil && first == iERR:
			if err := c.pass(n, seq, body); err != nil {
				return err
			}
			_, msg := parseErr(body)
			each(result{err: msg})
			return c.w.w.Flush()
		case body != nil && first == iLocalInfile:
			// Never asked for (the capability is not passed upstream):
			// send no file, and tell the client no.
			if err := c.forward(seq+1, nil); err != nil {
				return err
			}
			if _, _, _, _, err := c.packet(smallPacket); err != nil {
				return err
			}
			if err := c.w.writeErr(seq, erNotAllowedCommand, "42000", errLocalInfile); err != nil {
				return err
			}
			each(result{err: errLocalInfile})
			return c.w.w.Flush()
		default:
			if body == nil {
				return errors.New("target: malformed response")
			}
			cols, _, _, ok := readLenEnc(body)
			if !ok {
				return errors.New("target: malformed column count")
			}
			if err := c.pass(n, seq, body); err != nil {
				return err
			}
			r, err := c.relayResultSet(int(cols))
			if err != nil {
				return err
			}
			each(r)
			if r.err != "" || r.status&statusMoreResults == 0 {
				return c.w.w.Flush()
			}
		}
	}
}

// relayResultSet relays the column definitions and rows of a result set
// whose column count was just relayed.
func (c *clientConn) relayResultSet(cols int) (result, error) {
	for range cols {
		n, seq, _, body, err := c.packet(smallPacket)
		if err != nil {
			return result{}, err
		}
		if err := c.pass(n, seq, body); err != nil {
			return result{}, err
		}
	}
	if c.caps&capDeprecateEOF == 0 {
		n, seq, _, body, err := c.packet(smallPacket)
		if err != nil {
			return result{}, err
		}
		if err := c.pass(n, seq, body); err != nil {
			return result{}, err
		}
		if st := eofStatus(body); st&statusCursorExists != 0 {
			return result{status: st}, nil // rows come with COM_STMT_FETCH
		}
	}
	return c.relayRows()
}

// relayRows relays rows up to the packet that ends them (EOF/OK or ERR).
func (c *clientConn) relayRows() (result, error) {
	var r result
	cont := false // the previous packet was full: this one continues it
	for {
		n, seq, first, body, err := c.packet(64)
		if err != nil {
			return r, err
		}
		end := !cont && body != nil && c.isEnd(n, first)
		if end && c.caps&capDeprecateEOF != 0 { // an OK packet
			c.noteMode(&r, body)
			body = c.toClient(body)
			n = len(body)
		}
		if err := c.pass(n, seq, body); err != nil {
			return r, err
		}
		switch {
		case cont:
		case body != nil && first == iERR:
			_, r.err = parseErr(body)
			return r, nil
		case end:
			r.status = c.endStatus(body)
			return r, nil
		default:
			r.rows++
		}
		cont = n == maxPayload
	}
}

// relayUntilEnd relays packets up to an EOF/OK end or an ERR: the column
// definitions of COM_FIELD_LIST.
func (c *clientConn) relayUntilEnd() (result, error) {
	r, err := c.relayRows()
	if err != nil {
		return r, err
	}
	return r, c.w.w.Flush()
}

// relayOne relays a one-packet response (OK, ERR, EOF, a string).
func (c *clientConn) relayOne() (result, error) {
	n, seq, first, body, err := c.packet(smallPacket)
	if err != nil {
		return result{}, err
	}
	if body != nil && first == iOK {
		body = c.toClient(body)
		n = len(body)
	}
	if err := c.pass(n, seq, body); err != nil {
		return result{}, err
	}
	var r result
	if body != nil && first == iERR {
		_, r.err = parseErr(body)
	}
	return r, c.w.w.Flush()
}

// relayPrepare relays the response to COM_STMT_PREPARE and returns the
// statement's id and number of parameters (ok false when the target
// refused it).
func (c *clientConn) relayPrepare() (id uint32, params int, r result, err error) {
	n, seq, first, body, err := c.packet(smallPacket)
	if err != nil {
		return 0, 0, r, err
	}
	if err := c.pass(n, seq, body); err != nil {
		return 0, 0, r, err
	}
	if body == nil || first != iOK || len(body) < 9 {
		if body != nil && first == iERR {
			_, r.err = parseErr(body)
		} else {
			r.err = "malformed response"
		}
		return 0, 0, r, c.w.w.Flush()
	}
	id = binary.LittleEndian.Uint32(body[1:])
	cols := int(binary.LittleEndian.Uint16(body[5:]))
	params = int(binary.LittleEndian.Uint16(body[7:]))
	for _, count := range []int{params, cols} {
		if count == 0 {
			continue
		}
		defs := count
		if c.caps&capDeprecateEOF == 0 {
			defs++
		}
		for range defs {
			n, seq, _, body, err := c.packet(smallPacket)
			if err != nil {
				return 0, 0, r, err
			}
			if err := c.pass(n, seq, body); err != nil {
				return 0, 0, r, err
			}
		}
	}
	return id, params, r, c.w.w.Flush()
}

// writeErr writes an ERR packet without flushing.
func (pw *packetWriter) writeErr(seq byte, code uint16, state, msg string) error {
	pw.seq = seq
	return pw.writeMessage(errPacket(code, state, msg))
}
