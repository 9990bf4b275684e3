package postgres

import (
	"testing"
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
	left := q.endBatch()
	if len(left) != 1 || left[0].text != "b" {
		t.Fatalf("left in the batch: %+v", left)
	}
	if _, ok := q.take(entryExec); ok {
		t.Fatal("took an exec from a batch without one")
	}
	if e, ok := q.take(entryPoison); !ok || e.text != "next batch" {
		t.Fatalf("poison of the second batch: %+v %v", e, ok)
	}
	if left := q.endBatch(); len(left) != 0 {
		t.Fatalf("left: %+v", left)
	}
	// Compaction keeps order.
	for i := range 200 {
		q.push(entry{kind: entryExec, text: string(rune('a' + i%26))}, entry{kind: entrySync})
		if e, ok := q.take(entryExec); !ok || e.text != string(rune('a'+i%26)) {
			t.Fatalf("round %d: %+v %v", i, e, ok)
		}
		q.endBatch()
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
