package customer

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// Rate limits of login and registration (docs/security.md, "Rate limits"). They are GCRA
// limits (github.com/go-redis/redis_rate) kept in Redis, so every replica of the service
// counts against the same budgets, and each budget refills by itself: nothing locks an
// account or an address for longer than its period.
//
// A login reserves one unit of each of its budgets before the password is checked, so
// that concurrent guesses cannot all pass a check made before any of them failed; a
// success gives the failure budgets their unit back, a failure costs the address
// failureCost units in all. The password of a login refused with 429 is not checked at
// all: a right password during an attack is refused too, which is what makes guessing
// useless.

// Limits are the budgets of login and registration; a zero (or not positive) one is
// DefaultLimits' (the zero Limits is DefaultLimits). Off turns every limit off (load
// tests whose clients all come from one address).
type Limits struct {
	Off bool
	// LoginPerAddress bounds the logins from one client address, whatever the username;
	// a failure costs failureCost units.
	LoginPerAddress redis_rate.Limit
	// FailuresPerUserAddress bounds the failed logins for one username from one address:
	// one address gets nowhere guessing one password, and cannot lock its owner out.
	FailuresPerUserAddress redis_rate.Limit
	// FailuresPerUser bounds the failed logins for one username from all addresses
	// together: many addresses get nowhere either; the account is refused while they try,
	// and for at most the time one unit takes to come back after they stop.
	FailuresPerUser redis_rate.Limit
	// RegistrationsPerAddress bounds the registrations (attempts) from one address.
	RegistrationsPerAddress redis_rate.Limit
	// RegistrationsPerUsername bounds the attempts to register one username.
	RegistrationsPerUsername redis_rate.Limit
}

// DefaultLimits are the limits when Config.Limits is zero. An office behind one address
// still has room: 100 logins per 10 minutes, 50 registrations per hour.
var DefaultLimits = Limits{
	LoginPerAddress:          redis_rate.Limit{Rate: 100, Burst: 100, Period: 10 * time.Minute},
	FailuresPerUserAddress:   redis_rate.Limit{Rate: 5, Burst: 5, Period: 15 * time.Minute},
	FailuresPerUser:          redis_rate.Limit{Rate: 20, Burst: 20, Period: time.Hour},
	RegistrationsPerAddress:  redis_rate.Limit{Rate: 50, Burst: 50, Period: time.Hour},
	RegistrationsPerUsername: redis_rate.Limit{Rate: 5, Burst: 5, Period: time.Hour},
}

// failureCost is what a failed login costs the address's budget, a success 1.
const failureCost = 5

// limiter applies Limits to the requests of the service. A nil *limiter limits nothing.
type limiter struct {
	rl     *redis_rate.Limiter
	prefix string
	limits Limits
}

func newLimiter(rdb *redis.Client, prefix string, limits Limits) *limiter {
	if limits.Off {
		return nil
	}
	for _, l := range []struct{ limit, def *redis_rate.Limit }{
		{&limits.LoginPerAddress, &DefaultLimits.LoginPerAddress},
		{&limits.FailuresPerUserAddress, &DefaultLimits.FailuresPerUserAddress},
		{&limits.FailuresPerUser, &DefaultLimits.FailuresPerUser},
		{&limits.RegistrationsPerAddress, &DefaultLimits.RegistrationsPerAddress},
		{&limits.RegistrationsPerUsername, &DefaultLimits.RegistrationsPerUsername},
	} {
		if l.limit.Rate <= 0 || l.limit.Burst <= 0 || l.limit.Period <= 0 {
			*l.limit = *l.def
		}
	}
	return &limiter{rl: redis_rate.NewLimiter(rdb), prefix: prefix + "limit:", limits: limits}
}

// TooManyError is a request refused by a limit: the API answers 429 with Retry-After.
type TooManyError struct {
	Message    string
	RetryAfter time.Duration
}

func (e *TooManyError) Error() string { return e.Message }

// writeTooMany answers e: 429, Retry-After in whole seconds (at least 1), and the error
// as JSON.
func writeTooMany(w http.ResponseWriter, e *TooManyError) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	httpjson.Error(w, http.StatusTooManyRequests, e.Message)
}

func retryAfterSeconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// budget is one key of a limit.
type budget struct {
	key   string
	limit redis_rate.Limit
	// cost is the units an attempt takes (0: 1).
	cost int
	// refused is what a refused request is told, with the wait.
	refused string
}

// loginAttempt is a login's reservation of its budgets; see limiter.login.
type loginAttempt struct {
	l        *limiter
	address  budget
	failures []budget // the failure budgets, each reserved by one unit
}

// login reserves what a failed login of username from address costs: failureCost units
// of the address's budget and one of each failure budget. It returns a *TooManyError
// when one of them is spent (reserving nothing then), or an error reaching Redis. A
// failure keeps the units; the caller calls succeeded on the attempt for a right
// password, or for one that could not be checked.
func (l *limiter) login(ctx context.Context, address, username string) (*loginAttempt, error) {
	if l == nil {
		return nil, nil
	}
	a := &loginAttempt{l: l,
		// The address pays for a failure up front (failureCost), so that a spent budget
		// refuses the next attempt; a success gets back all but one unit.
		address: budget{l.prefix + "login:addr:" + address, l.limits.LoginPerAddress, failureCost,
			"too many logins from your address"},
		failures: []budget{
			{l.prefix + "login-failures:user-addr:" + username + ":" + address, l.limits.FailuresPerUserAddress, 0,
				"too many failed logins for this account from your address"},
			{l.prefix + "login-failures:user:" + username, l.limits.FailuresPerUser, 0,
				"too many failed logins for this account"},
		}}
	if err := l.reserve(ctx, append([]budget{a.address}, a.failures...)...); err != nil {
		return nil, err
	}
	return a, nil
}

// succeeded gives the failure budgets back the units that the attempt reserved: for a
// right password, and for one that could not be checked.
func (a *loginAttempt) succeeded(ctx context.Context) error {
	if a == nil {
		return nil
	}
	back := budget{key: a.address.key, limit: a.address.limit, cost: failureCost - 1}
	return a.l.refund(ctx, append(a.failures, back)...)
}

// register reserves a registration of username from address, as login does.
func (l *limiter) register(ctx context.Context, address, username string) error {
	if l == nil {
		return nil
	}
	return l.reserve(ctx,
		budget{l.prefix + "register:addr:" + address, l.limits.RegistrationsPerAddress, 0,
			"too many registrations from your address"},
		budget{l.prefix + "register:user:" + username, l.limits.RegistrationsPerUsername, 0,
			"too many attempts to register this username"})
}

// reserve takes one unit of every budget, or, when one of them is spent, none: the units
// taken before it are given back, and the error is a *TooManyError that waits for the
// spent budget.
func (l *limiter) reserve(ctx context.Context, budgets ...budget) error {
	for i, b := range budgets {
		res, err := l.rl.AllowN(ctx, b.key, b.limit, b.units())
		if err != nil {
			return fmt.Errorf("check the rate limit: %w: %w", service.ErrUnavailable, err)
		}
		if res.Allowed == 0 {
			if err := l.refund(ctx, budgets[:i]...); err != nil {
				return err
			}
			return &TooManyError{Message: fmt.Sprintf("%s: try again in %d seconds", b.refused, retryAfterSeconds(res.RetryAfter)),
				RetryAfter: res.RetryAfter}
		}
	}
	return nil
}

// units is what one attempt takes of b.
func (b budget) units() int { return max(b.cost, 1) }

// refund gives back each budget's units. redis_rate's GCRA moves a key's time back
// by one unit for a negative count; a budget that is within one unit of full loses the
// rest of that unit (it never goes past full).
func (l *limiter) refund(ctx context.Context, budgets ...budget) error {
	for _, b := range budgets {
		if _, err := l.rl.AllowN(ctx, b.key, b.limit, -b.units()); err != nil {
			return fmt.Errorf("refund the rate limit: %w: %w", service.ErrUnavailable, err)
		}
	}
	return nil
}

// clientAddress is the address of the client of r: the X-Forwarded-For that the gateway
// sets (it replaces what a client sends with the address it sees, or that a proxy it
// trusts reports), else the peer's address. The service trusts the header because only
// the gateway reaches it (compose publishes no service port); a client that reaches
// the service directly can pick its address, but not escape the per-username limits.
// Only one header of one address is believed (the gateway's; anything else is the peer).
// An IPv6 client is its /64, the block one subscriber gets: else every address of it
// would be a fresh budget.
func clientAddress(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) == 1 && !strings.Contains(xff[0], ",") {
		if a, err := netip.ParseAddr(strings.TrimSpace(xff[0])); err == nil {
			return addressKey(a)
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return addressKey(ap.Addr())
	}
	return r.RemoteAddr
}

// addressKey is the rate limits' name of a: an IPv4 address as it is, an IPv6 one as
// its /64.
func addressKey(a netip.Addr) string {
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}
