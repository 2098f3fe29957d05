package admin

import "strconv"

// Small formatting helpers for the templates.

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// prev and next are the positions around position p (a decimal string).
func prev(p string) string {
	n, _ := strconv.ParseInt(p, 10, 64)
	return itoa(max(n-1, 1))
}

func next(p string) string {
	n, _ := strconv.ParseInt(p, 10, 64)
	return itoa(n + 1)
}
