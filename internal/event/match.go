package event

import "strings"

// TypeMatches reports whether typ matches one of patterns, with the semantics of an AMQP
// topic binding, so that a service's feed catch-up and its queue's bindings agree: words
// are separated by '.', "*" matches exactly one word and "#" zero or more words.
// "order.*" matches "order.placed" but not "order.item.added"; "order.#" matches both.
// No patterns match every type.
func TypeMatches(patterns []string, typ string) bool {
	if len(patterns) == 0 {
		return true
	}
	words := strings.Split(typ, ".")
	for _, p := range patterns {
		if matchWords(strings.Split(p, "."), words) {
			return true
		}
	}
	return false
}

func matchWords(pattern, words []string) bool {
	for i, p := range pattern {
		switch {
		case p == "#":
			rest := pattern[i+1:]
			for j := i; j <= len(words); j++ {
				if matchWords(rest, words[j:]) {
					return true
				}
			}
			return false
		case i >= len(words):
			return false
		case p != "*" && p != words[i]:
			return false
		}
	}
	return len(pattern) == len(words)
}
