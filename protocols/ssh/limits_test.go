package ssh

import (
	"errors"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestChannelCaps: a connection may hold maxSessionChannels sessions open
// at once, on a target and on the self-service interface; the next is
// refused with ResourceShortage, and a closed one frees its slot.
func TestChannelCaps(t *testing.T) {
	for _, user := range []string{"root@web01", "alice"} {
		t.Run(user, func(t *testing.T) {
			e := newEnv(t)
			c := e.mustDial(user, "alice")
			var open []ssh.Channel
			for range maxSessionChannels {
				ch, reqs, err := c.OpenChannel("session", nil)
				if err != nil {
					t.Fatalf("session %d: %v", len(open)+1, err)
				}
				go ssh.DiscardRequests(reqs)
				open = append(open, ch)
			}
			_, _, err := c.OpenChannel("session", nil)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage {
				t.Fatalf("session %d: %v, want a refusal for resource shortage", maxSessionChannels+1, err)
			}
			open[0].Close()
			waitFor(t, "a slot freed", func() bool {
				ch, reqs, err := c.OpenChannel("session", nil)
				if err != nil {
					return false
				}
				go ssh.DiscardRequests(reqs)
				open[0] = ch
				return true
			})
			for _, ch := range open {
				ch.Close()
			}
		})
	}
}

func TestChannelCount(t *testing.T) {
	var c channelCount
	var releases []func()
	for range maxSessionChannels {
		r, why := c.take(true)
		if why != "" {
			t.Fatal(why)
		}
		releases = append(releases, r)
	}
	if _, why := c.take(true); why == "" {
		t.Fatal("a session over the cap was counted")
	}
	for range maxChannels - maxSessionChannels {
		r, why := c.take(false)
		if why != "" {
			t.Fatal(why)
		}
		releases = append(releases, r)
	}
	if _, why := c.take(false); why == "" {
		t.Fatal("a channel over the cap was counted")
	}
	for _, r := range releases {
		r()
	}
	if c.all.Load() != 0 || c.sessions.Load() != 0 {
		t.Fatalf("after release: %d channels, %d sessions", c.all.Load(), c.sessions.Load())
	}
}
