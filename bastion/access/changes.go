package access

// Changed returns a channel that is closed at the next change of a request
// made through this service (created, approved, denied, revoked, expired by
// the sweep): a grant watcher waits on it to end revoked sessions at once
// instead of at its next tick. Changes made by other replicas are not
// seen here.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
