package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/web"
)

// The API's resources that only the admin site shows (services/gateway/openapi.yaml);
// those that both sites show are web.Category, web.Product, web.Customer and web.Order.

type credit struct {
	CreditCents int64 `json:"credit_cents"`
	Version     int64 `json:"version"`
}

type order = web.Order

type revenue struct {
	RevenueCents int64 `json:"revenue_cents"`
	Invoices     int64 `json:"invoices"`
}

type feedPage struct {
	Events    []event.Stored `json:"events"`
	NextAfter int64          `json:"next_after"`
	Head      int64          `json:"head"`
}

type streamPage struct {
	Stream  string         `json:"stream"`
	Version int64          `json:"version"`
	Events  []event.Stored `json:"events"`
}

type deadLetter struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	RoutingKey string          `json:"routing_key"`
	Body       json.RawMessage `json:"body"`
	Reason     string          `json:"reason"`
	DiedAt     *time.Time      `json:"died_at"`
	Count      int64           `json:"count"`
}

type registryView struct {
	Instances []struct {
		Service  string    `json:"service"`
		Instance string    `json:"instance"`
		URL      string    `json:"url"`
		LastSeen time.Time `json:"last_seen"`
	} `json:"instances"`
	Static     map[string]string `json:"static"`
	TTLSeconds float64           `json:"ttl_seconds"`
}

// deadLetterServices are the services whose event queues have dead letters.
var deadLetterServices = registry.Subscribers()

// pageSize is how many rows a paged list shows.
const pageSize = 20

// maxCountPages bounds how many pages of web.MaxPage orderCount reads (the API has no
// count).
const maxCountPages = 20

// orderCount counts the orders of status by paging through them; more than
// maxCountPages×web.MaxPage is shown with a "+".
func (s *server) orderCount(ctx context.Context, token, status string) (string, error) {
	n, after := 0, ""
	for range maxCountPages {
		page, next, err := s.api.Orders(ctx, token, status, after, web.MaxPage)
		if err != nil {
			return "", err
		}
		n += len(page)
		if next == "" || len(page) == 0 {
			return strconv.Itoa(n), nil
		}
		after = next
	}
	return strconv.Itoa(n) + "+", nil
}

// feed returns the events after position after (at most limit).
func (s *server) feed(ctx context.Context, token string, after int64, limit int) (feedPage, error) {
	var p feedPage
	err := s.api.Get(ctx, token, "/eventstore/events", url.Values{"after": {strconv.FormatInt(after, 10)},
		"limit": {strconv.Itoa(limit)}}, &p)
	return p, err
}

// latest returns the last limit events of the feed, oldest first.
func (s *server) latest(ctx context.Context, token string, limit int) (feedPage, error) {
	head, err := s.feed(ctx, token, 0, 1)
	if err != nil {
		return feedPage{}, err
	}
	return s.feed(ctx, token, max(head.Head-int64(limit), 0), limit)
}

// amount formats cents for an input field, e.g. 2499 → "24.99".
func amount(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// parseMoney reads an amount typed by a manager ("24.99", "24,99", "1 000", "24 €",
// "€24.99" as the site shows it) into cents. It refuses negative amounts, more than two
// decimals and anything else.
func parseMoney(s string) (int64, bool) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "€"))
	s = strings.TrimSpace(strings.TrimPrefix(s, "€"))
	s = strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "\u00a0", "")
	if s == "" || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, false
	}
	if strings.Count(s, ",") == 1 && !strings.Contains(s, ".") && len(s)-strings.Index(s, ",") <= 3 {
		s = strings.Replace(s, ",", ".", 1) // a decimal comma
	}
	s = strings.ReplaceAll(s, ",", "") // thousands separators
	units, frac, hasFrac := strings.Cut(s, ".")
	if units == "" || len(units) > 13 || hasFrac && (frac == "" || len(frac) > 2) {
		return 0, false
	}
	for _, r := range units + frac {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	u, _ := strconv.ParseInt(units, 10, 64)
	var f int64
	if hasFrac {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	return u*100 + f, true
}
