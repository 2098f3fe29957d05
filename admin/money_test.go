package admin

import (
	"testing"

	"github.com/msdemo/msdemo/internal/web"
)

func TestParseMoney(t *testing.T) {
	for _, tc := range []struct {
		in    string
		cents int64
		ok    bool
	}{
		{"24.99", 2499, true},
		{"24,99", 2499, true},
		{"24.9", 2490, true},
		{"24", 2400, true},
		{"0", 0, true},
		{"1,000", 100000, true},
		{"1,000.50", 100050, true},
		{"1 000,50", 100050, true},
		{" 19.90 € ", 1990, true},
		{"€1,234.56", 123456, true}, // as the site shows it
		{"", 0, false},
		{"abc", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.234", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"1e3", 0, false},
		{"99999999999999", 0, false},
	} {
		cents, ok := parseMoney(tc.in)
		if cents != tc.cents || ok != tc.ok {
			t.Errorf("parseMoney(%q): got %d %v, want %d %v", tc.in, cents, ok, tc.cents, tc.ok)
		}
	}
}

func TestMoneyAndAmount(t *testing.T) {
	for _, tc := range []struct {
		cents         int64
		money, amount string
	}{
		{0, "€0.00", "0.00"},
		{2499, "€24.99", "24.99"},
		{123456789, "€1,234,567.89", "1234567.89"},
		{-150, "-€1.50", "-1.50"},
	} {
		if got := web.Money(tc.cents); got != tc.money {
			t.Errorf("money(%d): got %q, want %q", tc.cents, got, tc.money)
		}
		if got := amount(tc.cents); got != tc.amount {
			t.Errorf("amount(%d): got %q, want %q", tc.cents, got, tc.amount)
		}
		if back, ok := parseMoney(amount(max(tc.cents, 0))); !ok || back != max(tc.cents, 0) {
			t.Errorf("parseMoney(amount(%d)): got %d %v", tc.cents, back, ok)
		}
	}
}
