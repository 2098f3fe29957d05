package customer

import (
	"net/http"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Limits left zero take the defaults one by one; Off limits nothing.
func TestNewLimiterDefaults(t *testing.T) {
	short := redis_rate.Limit{Rate: 1, Burst: 1, Period: time.Second}
	l := newLimiter(nil, "p:", Limits{FailuresPerUser: short, LoginPerAddress: redis_rate.Limit{Rate: 0, Burst: 3, Period: time.Hour}})
	want := DefaultLimits
	want.FailuresPerUser = short
	if l.limits != want || l.prefix != "p:limit:" {
		t.Errorf("got %+v under %q, want %+v under p:limit:", l.limits, l.prefix, want)
	}
	if l := newLimiter(nil, "p:", Limits{Off: true}); l != nil {
		t.Errorf("Off: got a limiter, want none")
	}
}

// clientAddress believes one X-Forwarded-For of one address (the gateway's), normalized,
// and takes the peer's address without one, with garbage, or with a list or several
// headers (a client's own next to the gateway's); an IPv6 client is its /64.
func TestClientAddress(t *testing.T) {
	for _, tt := range []struct {
		xff  []string
		want string
	}{
		{nil, "192.0.2.1"},
		{[]string{"198.51.100.7"}, "198.51.100.7"},
		{[]string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{[]string{"6.6.6.6, 198.51.100.7"}, "192.0.2.1"},
		{[]string{"198.51.100.7", "6.6.6.6"}, "192.0.2.1"},
		{[]string{"not an address"}, "192.0.2.1"},
		{[]string{"2001:db8:1:2:aaaa::1"}, "2001:db8:1:2::/64"},
		{[]string{"2001:db8:1:2:bbbb::9"}, "2001:db8:1:2::/64"},
	} {
		r := &http.Request{RemoteAddr: "192.0.2.1:4000", Header: http.Header{}}
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddress(r); got != tt.want {
			t.Errorf("X-Forwarded-For %q: got %s, want %s", tt.xff, got, tt.want)
		}
	}
}
