package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Storage keeps recordings as named objects. Implementations: Dir (a local
// directory, the embedded default), s3store.Store (a bucket), spool.Store
// (a local spool streaming to a bucket). Every
// implementation passes the contract suite in package storagetest and is
// safe for concurrent use.
//
// Names are slash-separated paths such as "2031/03/04/ssh-42.cast"; see
// ValidateName. Every method rejects an invalid name with an error wrapping
// ErrInvalidName.
type Storage interface {
	// Create opens a new object for appending. It fails with an error
	// wrapping fs.ErrExist if the object exists. ctx bounds the creation
	// only: the object stays usable until it is closed.
	Create(ctx context.Context, name string) (Object, error)
	// Open opens an object for reading. An object still being written can
	// be opened: the reader sees at least what was written before the last
	// Sync. Errors wrap fs.ErrNotExist when the object is missing.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes an object. Errors wrap fs.ErrNotExist when it is
	// missing.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// List describes the objects whose names start with prefix (a plain
	// string prefix, as in S3, not a directory), sorted by name. Whether an
	// object being written is listed before it is closed depends on the
	// backend (Dir lists it).
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes an object. Errors wrap fs.ErrNotExist when it is
	// missing.
	Delete(ctx context.Context, name string) error
}

// Object is an object being written. It is used by one goroutine at a time.
type Object interface {
	io.Writer
	// Sync makes what was written durable (fsync for Dir), and readable
	// by Storage.Open.
	Sync() error
	// Close syncs and closes the object. Writes after Close fail.
	Close() error
}

// ObjectInfo describes an object.
type ObjectInfo struct {
	Name    string
	Size    int64     // bytes
	ModTime time.Time // of the last write
}

// ErrInvalidName is wrapped by the errors for names ValidateName rejects.
var ErrInvalidName = errors.New("invalid object name")

// Name limits: the object key limit of S3, and the file name limit of common
// file systems for each element.
const (
	maxNameLen    = 1024
	maxElementLen = 255
)

// ValidateName checks an object name: 1 to 1024 bytes of [A-Za-z0-9._/-],
// relative (no leading "/"), clean (no empty, "." or trailing elements) and
// without "..", each element at most 255 bytes. Every Storage applies the same
// rule, so that a recording can move between backends.
func ValidateName(name string) error {
	if err := validateChars(name); err != nil {
		return err
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w %q: must be relative", ErrInvalidName, name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w %q: must not contain \"..\"", ErrInvalidName, name)
	case path.Clean(name) != name || name == ".":
		return fmt.Errorf("%w %q: must be a clean path (no empty or \".\" elements, no trailing \"/\")", ErrInvalidName, name)
	}
	for elem := range strings.SplitSeq(name, "/") {
		if len(elem) > maxElementLen {
			return fmt.Errorf("%w %q: an element is longer than %d bytes", ErrInvalidName, name, maxElementLen)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: the characters and length of a name,
// or empty.
func validatePrefix(prefix string) error {
	return validateChars(prefix)
}

// validateChars checks that s is at most maxNameLen bytes of the characters
// names may hold.
func validateChars(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !nameChar(c) {
			return fmt.Errorf("%w %q: character %q not allowed (only A-Z a-z 0-9 . _ / -)", ErrInvalidName, s, c)
		}
	}
	return nil
}

// nameChar reports whether c may appear in a name.
func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-'
}

// DailyName is where a session's recording goes: by protocol and UTC day,
// PROTOCOL/YYYY/MM/DD/ID.EXT ("ssh/2026/11/28/4b8aa14386c7c37a.cast").
func DailyName(protocol string, t time.Time, id, ext string) string {
	return protocol + "/" + t.UTC().Format("2006/01/02") + "/" + id + "." + ext
}
