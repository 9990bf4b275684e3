// Package ascii holds small string helpers the standard library lacks:
// ContainsFold for ASCII keywords, shared by the SQL front ends, and Escape,
// which makes text a user supplied safe to show on a terminal.
package ascii

import "strings"

// ContainsFold reports whether s contains word, ignoring the case of ASCII
// letters, without allocating: strings.EqualFold at each position where
// word's first byte, in either case, stands.
func ContainsFold(s, word string) bool {
	if word == "" {
		return true
	}
	lo, up := toLower(word[0]), toUpper(word[0])
	for i := 0; i+len(word) <= len(s); i++ {
		if c := s[i]; (c == lo || c == up) && strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func toUpper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
