package web

import (
	"fmt"
	"strconv"
	"time"
)

// Money formats cents as an amount in euros for the sites' language, English: the symbol
// before the number, a comma between thousands, e.g. 123456 → "€1,234.56", -150 →
// "-€1.50". It is the one place the sites format money. (Integers throughout: cents are
// never a float.)
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	s := strconv.FormatInt(cents/100, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("%s€%s.%02d", sign, s, cents%100)
}

// FormatTime shows t in UTC, to the second ("26 Nov 2026 10:00:00 UTC"); the zero time is
// "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006 15:04:05 UTC")
}
