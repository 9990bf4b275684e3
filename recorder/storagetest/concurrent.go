package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/bastionhq/bastion/recorder"
)

// concurrency is how many goroutines the concurrency tests run at once.
const concurrency = 16

// testConcurrentObjects writes many objects at once, each from its own
// goroutine, syncing and reading them back while others are written.
func testConcurrentObjects(t *testing.T, st recorder.Storage) {
	const chunks = 40
	content := func(g, i int) string { return fmt.Sprintf("goroutine %d chunk %d\n", g, i) }
	var wg sync.WaitGroup
	errs := make([]error, concurrency)
	for g := range concurrency {
		wg.Go(func() {
			errs[g] = func() error {
				name := fmt.Sprintf("concurrent/%02d.cast", g)
				o, err := st.Create(t.Context(), name)
				if err != nil {
					return err
				}
				var want strings.Builder
				for i := range chunks {
					if _, err := io.WriteString(o, content(g, i)); err != nil {
						return errors.Join(err, o.Close())
					}
					want.WriteString(content(g, i))
					if i%10 == 9 {
						if err := o.Sync(); err != nil {
							return errors.Join(err, o.Close())
						}
						if err := checkPrefix(t.Context(), st, name, want.String()); err != nil {
							return errors.Join(err, o.Close())
						}
					}
				}
				return o.Close()
			}()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	infos, err := st.List(t.Context(), "concurrent/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != concurrency {
		t.Fatalf("List found %d objects, want %d", len(infos), concurrency)
	}
	for g := range concurrency {
		var want strings.Builder
		for i := range chunks {
			want.WriteString(content(g, i))
		}
		checkContent(t, st, fmt.Sprintf("concurrent/%02d.cast", g), want.String())
	}
}

// checkPrefix reports whether the object starts with want.
func checkPrefix(ctx context.Context, st recorder.Storage, name, want string) error {
	rc, err := st.Open(ctx, name)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(rc)
	if err := errors.Join(err, rc.Close()); err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), want) {
		return fmt.Errorf("%s: a reader sees %d bytes, want at least the %d synced", name, len(b), len(want))
	}
	return nil
}

// testConcurrentCreate creates one name from many goroutines at once:
// exactly one wins, the others fail with fs.ErrExist.
func testConcurrentCreate(t *testing.T, st recorder.Storage) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []int
	errs := make([]error, concurrency)
	for g := range concurrency {
		wg.Go(func() {
			o, err := st.Create(t.Context(), "contended")
			if err != nil {
				if !errors.Is(err, fs.ErrExist) {
					errs[g] = fmt.Errorf("goroutine %d: %w, want an error wrapping fs.ErrExist", g, err)
				}
				return
			}
			mu.Lock()
			winners = append(winners, g)
			mu.Unlock()
			if _, err := fmt.Fprintf(o, "winner %d", g); err != nil {
				errs[g] = errors.Join(err, o.Close())
				return
			}
			errs[g] = o.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(winners) != 1 {
		t.Fatalf("%d goroutines created the object, want exactly 1", len(winners))
	}
	checkContent(t, st, "contended", fmt.Sprintf("winner %d", winners[0]))
}

// testCanceledContext checks that every method gives up on a canceled
// context.
func testCanceledContext(t *testing.T, st recorder.Storage) {
	put(t, st, "there", "x")
	ctx := canceled(t)
	o, err := st.Create(ctx, "new")
	if err == nil {
		_ = o.Close() // the error is what the test reports
	}
	for _, c := range []struct {
		op  string
		err error
	}{
		{"Create", err},
		{"Open", func() error {
			rc, err := st.Open(ctx, "there")
			if err == nil {
				_ = rc.Close() // the missing error is what the test reports
			}
			return err
		}()},
		{"Stat", func() error { _, err := st.Stat(ctx, "there"); return err }()},
		{"List", func() error { _, err := st.List(ctx, ""); return err }()},
		{"Delete", st.Delete(ctx, "there")},
	} {
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s with a canceled context: error %v, want one wrapping context.Canceled", c.op, c.err)
		}
	}
	checkContent(t, st, "there", "x")
}
