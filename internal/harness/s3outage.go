package harness

import (
	"context"
	"errors"
	"fmt"
)

// Pause stops the gateway process, keeping its data: requests fail
// (connection refused) until Resume. Tests use it for storage outages.
func (s *S3) Pause() error {
	if s.proc == nil {
		return errors.New("harness: s3: not running")
	}
	err := s.proc.stop()
	s.proc = nil
	if err != nil {
		return fmt.Errorf("harness: s3: pause: %w", err)
	}
	return nil
}

// Resume starts the gateway again after Pause, on the same address and
// with the same data and credentials.
func (s *S3) Resume(ctx context.Context) error {
	if s.proc != nil {
		return errors.New("harness: s3: already running")
	}
	bin, err := versitygw(ctx)
	if err != nil {
		return fmt.Errorf("harness: s3: resume: %w", err)
	}
	if err := s.launch(ctx, bin, s.logPath+".resumed"); err != nil {
		return fmt.Errorf("harness: s3: resume: %w", err)
	}
	return nil
}
