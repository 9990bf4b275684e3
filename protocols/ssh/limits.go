package ssh

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// Caps on the channels one connection may have open at once: each session
// channel costs a target channel, a recording and a few goroutines, so a
// client that opens them without end must be stopped. maxSessionChannels is
// OpenSSH's MaxSessions default; maxChannels also counts forwarded ports.
const (
	maxSessionChannels = 10
	maxChannels        = 64
)

// channelCount counts a connection's open channels against the caps.
type channelCount struct{ sessions, all atomic.Int32 }

// take counts a new channel, or returns why it is refused; release uncounts
// it once it closes.
func (c *channelCount) take(session bool) (release func(), refusal string) {
	if c.all.Add(1) > maxChannels {
		c.all.Add(-1)
		return nil, fmt.Sprintf("bastion: too many open channels on this connection (limit %d)", maxChannels)
	}
	if !session {
		return func() { c.all.Add(-1) }, ""
	}
	if c.sessions.Add(1) > maxSessionChannels {
		c.sessions.Add(-1)
		c.all.Add(-1)
		return nil, fmt.Sprintf("bastion: too many open sessions on this connection (limit %d)", maxSessionChannels)
	}
	return func() { c.sessions.Add(-1); c.all.Add(-1) }, ""
}

// admit takes a slot for nch, or rejects it and reports false.
func (c *channelCount) admit(nch ssh.NewChannel, log interface{ Info(string, ...any) }) (release func(), ok bool) {
	release, refusal := c.take(nch.ChannelType() == "session")
	if refusal != "" {
		log.Info("channel refused over the cap", "type", nch.ChannelType())
		if err := nch.Reject(ssh.ResourceShortage, refusal); err != nil {
			log.Info("reject channel", "err", err)
		}
		return nil, false
	}
	return release, true
}
