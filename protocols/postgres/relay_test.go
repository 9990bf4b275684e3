package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
)

// TestQueue: the target-to-client loop takes completions and poisons from
// the current batch only, and a batch ends at its sync with the statements
// that never completed.
func TestQueue(t *testing.T) {
	var q queue
	q.push(entry{kind: entryExec, text: "a"}, entry{kind: entryPoison, text: "denied"}, entry{kind: entryExec, text: "b"},
		entry{kind: entrySync})
	q.push(entry{kind: entryPoison, text: "next batch"}, entry{kind: entrySync})

	if e, ok := q.take(entryExec); !ok || e.text != "a" {
		t.Fatalf("first completion: %+v %v", e, ok)
	}
	if e, ok := q.take(entryPoison); !ok || e.text != "denied" {
		t.Fatalf("poison of the batch: %+v %v", e, ok)
	}
	if _, ok := q.take(entryPoison); ok {
		t.Fatal("took a poison of the next batch")
	}
	left := q.endBatch('I')
	if len(left) != 1 || left[0].text != "b" {
		t.Fatalf("left in the batch: %+v", left)
	}
	if _, ok := q.take(entryExec); ok {
		t.Fatal("took an exec from a batch without one")
	}
	if e, ok := q.take(entryPoison); !ok || e.text != "next batch" {
		t.Fatalf("poison of the second batch: %+v %v", e, ok)
	}
	if left := q.endBatch('I'); len(left) != 0 {
		t.Fatalf("left: %+v", left)
	}
	// Compaction keeps order.
	for i := range 200 {
		q.push(entry{kind: entryExec, text: string(rune('a' + i%26))}, entry{kind: entrySync})
		if e, ok := q.take(entryExec); !ok || e.text != string(rune('a'+i%26)) {
			t.Fatalf("round %d: %+v %v", i, e, ok)
		}
		q.endBatch('I')
	}
	q.push(entry{kind: entryExec, text: "unfinished"})
	if left := q.drain(); len(left) != 1 || left[0].text != "unfinished" {
		t.Fatalf("drain: %+v", left)
	}
}

func TestCommandRows(t *testing.T) {
	for tag, want := range map[string]int64{"SELECT 3": 3, "INSERT 0 5": 5, "UPDATE 12": 12, "BEGIN": 0, "COPY 5000": 5000, "": 0, "X1": 0} {
		if got := commandRows(tag); got != want {
			t.Errorf("commandRows(%q) = %d, want %d", tag, got, want)
		}
	}
}

// TestQueueBounds: the queue is full at maxPendingEntries entries or
// maxPendingBytes of what they hold, never when empty, and signals room as
// entries leave.
func TestQueueBounds(t *testing.T) {
	var q queue
	for range maxPendingEntries - 1 {
		q.push(entry{kind: entrySync})
	}
	if full, _ := q.full(); full {
		t.Fatalf("full at %d entries", maxPendingEntries-1)
	}
	q.push(entry{kind: entrySync})
	full, room := q.full()
	if !full {
		t.Fatalf("not full at %d entries", maxPendingEntries)
	}
	select {
	case <-room: // signalled by nothing yet: drain a stale signal
	default:
	}
	q.endBatch('I')
	select {
	case <-room:
	default:
		t.Fatal("no room signalled when a batch ended")
	}
	if full, _ := q.full(); full {
		t.Fatal("full after a batch ended")
	}
	q.drain()

	big := strings.Repeat("x", maxPendingBytes)
	q.push(entry{kind: entryExec, text: big})
	if full, _ := q.full(); !full {
		t.Fatal("not full with one entry over maxPendingBytes")
	}
	if _, ok := q.take(entryExec); !ok {
		t.Fatal("take")
	}
	if full, _ := q.full(); full || q.bytes != 0 {
		t.Fatalf("full %v with %d bytes after the only entry left", full, q.bytes)
	}
	q.push(entry{kind: entryExec, text: big[:maxPendingBytes/2]}, entry{kind: entryExec, text: big[:maxPendingBytes/2]})
	if full, _ := q.full(); !full {
		t.Fatal("not full with entries holding maxPendingBytes")
	}
	q.drain()
	if full, _ := q.full(); full || q.bytes != 0 {
		t.Fatal("full after drain")
	}
}

// TestQueueFailedBatch: after the target fails a statement, the rest of
// the batch leaves the queue, and statements pushed into the failed batch
// are not queued (the target skips them up to Sync) until its Sync; those
// of the next batch are.
func TestQueueFailedBatch(t *testing.T) {
	var q queue
	q.push(entry{kind: entryExec, text: "a"}, entry{kind: entryExec, text: "b"}, entry{kind: entryPoison}, entry{kind: entryExec, text: "c"})
	if e, ok := q.take(entryExec); !ok || e.text != "a" {
		t.Fatalf("take: %+v %v", e, ok)
	}
	left := q.failBatch()
	if len(left) != 2 || left[0].text != "b" || left[1].text != "c" {
		t.Fatalf("left by the failure: %+v", left)
	}
	if !q.empty() || q.bytes != 0 {
		t.Fatalf("queue after the failure: %+v", q.items[q.head:])
	}
	skipped := q.push(entry{kind: entryExec, text: "d"}, entry{kind: entryPoison}, entry{kind: entrySync}, entry{kind: entryExec, text: "next"})
	if len(skipped) != 1 || skipped[0].text != "d" {
		t.Fatalf("skipped: %+v", skipped)
	}
	if left := q.endBatch('I'); len(left) != 0 {
		t.Fatalf("left at the failed batch's sync: %+v", left)
	}
	if e, ok := q.take(entryExec); !ok || e.text != "next" {
		t.Fatalf("statement of the next batch: %+v %v", e, ok)
	}
	// A failure in a batch whose Sync is queued leaves the next batch's
	// statements alone.
	q.push(entry{kind: entryExec, text: "x"}, entry{kind: entrySync})
	q.failBatch()
	if skipped := q.push(entry{kind: entryExec, text: "y"}); len(skipped) != 0 {
		t.Fatalf("skipped after a queued sync: %+v", skipped)
	}
	q.endBatch('I')
	if e, ok := q.take(entryExec); !ok || e.text != "y" {
		t.Fatalf("statement after the failed batch: %+v %v", e, ok)
	}
}

// TestReadWhole: a message larger than the read buffer is read whole; its
// buffer grows with the bytes that came, not with the length announced, and
// one over maxRetainedMessage is not kept.
func TestReadWhole(t *testing.T) {
	const bufSize = 4096
	var big []byte
	t.Run("announced, not sent", func(t *testing.T) {
		in := appendMsg(nil, msgQuery, []byte("SELECT 1"))
		binary.BigEndian.PutUint32(in[1:], 64<<20) // 64 MiB announced
		r := bufio.NewReaderSize(bytes.NewReader(in), bufSize)
		var buf []byte
		if _, _, err := readWhole(r, 64<<20-4, &buf); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated message: %v", err)
		}
		if cap(buf) > 0 {
			t.Fatalf("kept %d bytes of a message over the bound", cap(buf))
		}
	})
	for _, tt := range []struct {
		name string
		size int
		kept bool
	}{
		{"kept", maxRetainedMessage / 2, true},
		{"not kept", 2 * maxRetainedMessage, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{'x'}, tt.size)
			in := appendMsg(nil, msgQuery, body)
			r := bufio.NewReaderSize(bytes.NewReader(in), bufSize)
			msg, discard, err := readWhole(r, len(body), &big)
			if err != nil || discard != 0 || !bytes.Equal(msg, in) {
				t.Fatalf("read %d bytes, discard %d, %v", len(msg), discard, err)
			}
			if kept := cap(big) >= len(in); kept != tt.kept {
				t.Fatalf("buffer of %d bytes kept after a message of %d", cap(big), len(in))
			}
		})
	}
}

// TestWaitRoom: the client-to-target loop goes on at once while the queue
// has room; when it is full, it sends the target a Flush and waits until
// an answer takes an entry, or until the connection ends.
func TestWaitRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var up bytes.Buffer
		c := &conn{ubw: bufio.NewWriter(&up)}
		var cancel context.CancelCauseFunc
		c.ctx, cancel = context.WithCancelCause(context.Background())
		if err := c.waitRoom(); err != nil || up.Len() != 0 {
			t.Fatalf("with room: %v, sent %q", err, up.Bytes())
		}
		for range maxPendingEntries {
			c.pending.push(entry{kind: entrySync})
		}
		done := make(chan error, 1)
		go func() { done <- c.waitRoom() }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("returned with the queue full: %v", err)
		default:
		}
		if !bytes.Equal(up.Bytes(), flushMsg) {
			t.Fatalf("sent the target %q, want a Flush", up.Bytes())
		}
		c.pending.endBatch('I')
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		c.pending.push(entry{kind: entrySync})
		go func() { done <- c.waitRoom() }()
		synctest.Wait()
		why := errors.New("grant ended")
		cancel(why)
		if err := <-done; err != why {
			t.Fatalf("waiting when the connection ended: %v", err)
		}
	})
}
