package server

import (
	"fmt"
	"strings"

	"github.com/bastionhq/bastion/recorder"
)

// openRecordings opens recording storage: a local directory (the embedded
// default). Object storage (s3://) is not in this build.
func openRecordings(where string) (recorder.Storage, error) {
	if strings.Contains(where, "://") {
		return nil, fmt.Errorf("recordings: %q: only a local directory is supported in this build", where)
	}
	d, err := recorder.NewDir(where)
	if err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	return d, nil
}
