package customer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/msdemo/msdemo/internal/testenv"
)

// Tests of docs/security.md: the rate limits of login and registration, and password
// changes that revoke tokens. They go through the gateway, which trusts the
// X-Forwarded-For of the test (it calls from loopback, as the sites do), so each request
// can come from an address of its own.

// call is do from the client address addr: it returns the status, the Retry-After
// header and the body.
func call(t testing.TB, method, url, addr, token string, body any) (int, string, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// guess sends n logins of username with wrong passwords, 16 at a time, from the address
// addr(i) of the i-th, and counts the answers by status.
func guess(t *testing.T, api, username string, n int, addr func(int) string) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			status, _, _ := call(t, "POST", api+"/login", addr(i), "", Credentials{username, fmt.Sprintf("guess number %d", i)})
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return counts
}

// othersLogIn logs each of users in (password "password of <name>") from an address of
// its own, again and again until stop is closed (at least once), and reports every
// answer but 200; wait returns the number of logins.
func othersLogIn(t *testing.T, api string, users []string, stop <-chan struct{}) (wait func() int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	logins := 0
	for i, name := range users {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					if n > 0 { // at least once, however fast the attack was
						return
					}
				default:
				}
				status, _, body := call(t, "POST", api+"/login", fmt.Sprintf("198.51.100.%d", i+1), "", Credentials{name, "password of " + name})
				if status != http.StatusOK {
					t.Errorf("%s logs in during the attack: got %d %s, want 200", name, status, body)
					return
				}
				mu.Lock()
				logins++
				mu.Unlock()
			}
		})
	}
	return func() int { wg.Wait(); return logins }
}

// checkRefused checks that the right password of username from addr is refused with a
// 429 that says how long to wait, in Retry-After and in a JSON error.
func checkRefused(t *testing.T, api, username, password, addr string) {
	t.Helper()
	status, retryAfter, body := call(t, "POST", api+"/login", addr, "", Credentials{username, password})
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	if seconds, err := strconv.Atoi(retryAfter); status != http.StatusTooManyRequests || err != nil || seconds < 1 || e.Error == "" {
		t.Errorf("the right password of %s from %s during the attack: got %d, Retry-After %q, %s; want 429 with Retry-After in seconds and an error",
			username, addr, status, retryAfter, body)
	}
}

// attack registers victim and others, sends 1,000 wrong guesses for victim from
// addr(i), while the others log in again and again, each from an address of its own,
// and checks that the right password of victim from refusedFrom is refused meanwhile.
// It checks that the guesses got at most limit answers of 401 and 429 for the rest, and
// that the others logged in.
func attack(t *testing.T, ts *testSystem, others []string, addr func(int) string, refusedFrom string, limit int) {
	t.Helper()
	for _, u := range append([]string{"victim"}, others...) {
		ts.register(t, u, "password of "+u)
	}
	stop := make(chan struct{})
	wait := othersLogIn(t, ts.api, others, stop)
	counts := guess(t, ts.api, "victim", 1000, addr)
	checkRefused(t, ts.api, "victim", "password of victim", refusedFrom)
	close(stop)
	logins := wait()
	if counts[http.StatusUnauthorized] > limit || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 1000 {
		t.Errorf("1000 guesses: got %v, want at most %d of 401 and 429 for the rest", counts, limit)
	}
	if logins < len(others) {
		t.Errorf("other users logged in %d times during the attack, want at least %d", logins, len(others))
	}
	t.Logf("1000 guesses: %v; %d logins of others meanwhile", counts, logins)
}

// TestPasswordGuessingFromOneAddress: 1,000 guesses for one username from one address
// get 5 answers of 401 and then 429 only; the right password from that address is
// refused too, while other users, and the victim from another address, log in.
func TestPasswordGuessingFromOneAddress(t *testing.T) {
	t.Parallel()
	ts := start(t)
	attack(t, ts, []string{"ann", "bob", "cleo"}, func(int) string { return "203.0.113.7" }, "203.0.113.7",
		DefaultLimits.FailuresPerUserAddress.Burst)
	// One address cannot lock the victim out: from another, the password works.
	if status, _, body := call(t, "POST", ts.api+"/login", "192.0.2.50", "", Credentials{"victim", "password of victim"}); status != http.StatusOK {
		t.Errorf("the victim from another address: got %d %s, want 200", status, body)
	}
}

// TestPasswordGuessingFromManyAddresses: 1,000 guesses for one username, each from an
// address of its own, get at most FailuresPerUser answers of 401, then 429; during the
// attack the account is refused even with the right password from a fresh address
// (docs/security.md), and other users log in.
func TestPasswordGuessingFromManyAddresses(t *testing.T) {
	t.Parallel()
	ts := start(t)
	attack(t, ts, []string{"ann", "bob"}, func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255) },
		"192.0.2.99", DefaultLimits.FailuresPerUser.Burst)
}

// TestLockoutEnds: a spent failure budget comes back by itself, after the Retry-After
// that the 429 named; then the right password logs in.
func TestLockoutEnds(t *testing.T) {
	t.Parallel()
	limits := DefaultLimits
	// One failure back every 6 s: slow enough that the budget is still spent when the
	// guesses are done on a loaded machine (2 s, as before, refilled while they ran).
	limits.FailuresPerUser = redis_rate.Limit{Rate: 1, Burst: 2, Period: 6 * time.Second}
	ts := startWith(t, func(cfg *Config) { cfg.Limits = limits })
	ts.register(t, "ann", "password of ann")
	counts := guess(t, ts.api, "ann", 10, func(i int) string { return fmt.Sprintf("10.0.0.%d", i+1) })
	if counts[http.StatusUnauthorized] > 2 {
		t.Fatalf("10 guesses: got %v, want at most 2 of 401", counts)
	}
	status, retryAfter, _ := call(t, "POST", ts.api+"/login", "10.0.1.1", "", Credentials{"ann", "password of ann"})
	seconds, err := strconv.Atoi(retryAfter)
	if status != http.StatusTooManyRequests || err != nil || seconds < 1 || seconds > 6 {
		t.Fatalf("right password while locked: got %d with Retry-After %q, want 429 with 1 to 6 seconds", status, retryAfter)
	}
	time.Sleep(time.Duration(seconds) * time.Second)
	if status, _, body := call(t, "POST", ts.api+"/login", "10.0.1.1", "", Credentials{"ann", "password of ann"}); status != http.StatusOK {
		t.Errorf("right password after Retry-After: got %d %s, want 200", status, body)
	}
}

// TestRegistrationFlood: one address registers RegistrationsPerAddress accounts and then
// gets 429 with Retry-After; another address still registers.
func TestRegistrationFlood(t *testing.T) {
	t.Parallel()
	ts := start(t)
	limit := DefaultLimits.RegistrationsPerAddress.Burst
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // password hashing is slow
	for i := range limit + 10 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("flood%03d", i)
			status, retryAfter, _ := call(t, "POST", ts.api+"/users", "203.0.113.9", "", Registration{Username: name,
				FullName: name, Email: name + "@example.com", Password: "password of " + name})
			if status == http.StatusTooManyRequests && retryAfter == "" {
				t.Errorf("a 429 without Retry-After")
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[http.StatusCreated] != limit || counts[http.StatusTooManyRequests] != 10 {
		t.Errorf("%d registrations from one address: got %v, want %d of 201 and 10 of 429", limit+10, counts, limit)
	}
	if status, _, body := call(t, "POST", ts.api+"/users", "203.0.113.10", "", Registration{Username: "other",
		FullName: "Other", Email: "other@example.com", Password: "password of other"}); status != http.StatusCreated {
		t.Errorf("a registration from another address: got %d %s, want 201", status, body)
	}
}

// TestPasswordChange: a change needs the current password (a wrong one changes
// nothing), revokes every older token at the gateway and at the service, and answers a
// new token that works; the new password logs in, the old one does not.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	ts := start(t)
	old, next := "the old password", "the new password"
	browser1 := ts.register(t, "ann", old)
	browser2 := ts.login(t, "ann", old)
	user := ts.api + "/users/ann"
	change := func(current string) ProfileChange {
		return ProfileChange{FullName: "Name of ann", Email: "ann@example.com", Password: &next, CurrentPassword: current}
	}

	before := feed(t, ts.sys.EventstoreURL)
	for _, tt := range []struct {
		name, current string
		wantField     string
	}{{"no current password", "", "current_password"}, {"wrong current password", "not my password", "current_password"}} {
		var e struct{ Fields map[string]string }
		expect(t, 400, "PUT", user, browser1, change(tt.current), &e)
		if e.Fields[tt.wantField] == "" {
			t.Errorf("%s: got fields %v, want a message for %s", tt.name, e.Fields, tt.wantField)
		}
	}
	if after := feed(t, ts.sys.EventstoreURL); !bytes.Equal(before, after) {
		t.Errorf("a refused password change stored events")
	}
	expect(t, 200, "GET", user, browser2, nil, nil) // nothing was revoked
	ts.login(t, "ann", old)

	var changed struct {
		Version int64
		Token   string
	}
	expect(t, 200, "PUT", user, browser1, change(old), &changed)
	if changed.Token == "" {
		t.Fatalf("the answer to one's own password change has no new token")
	}
	for name, token := range map[string]string{"the other browser's": browser2, "the changing browser's old": browser1} {
		testenv.Eventually(t, 3*time.Second, name+" token gets 401 at the gateway", func() bool {
			status, _ := do(t, "GET", user, token, nil)
			return status == http.StatusUnauthorized
		})
		// The service refuses it too, at once, without the gateway.
		if status, body := do(t, "GET", "http://"+ts.svc.cfg.Service.Addr+"/users/ann", token, nil); status != http.StatusUnauthorized {
			t.Errorf("%s token at the service: got %d %s, want 401", name, status, body)
		}
	}
	expect(t, 200, "GET", user, changed.Token, nil, nil)
	expect(t, 401, "POST", ts.api+"/login", "", Credentials{"ann", old}, nil)
	fresh := ts.login(t, "ann", next)
	expect(t, 200, "GET", user, fresh, nil, nil)

	// A manager's reset needs no current password and revokes the user's tokens too.
	admin := ts.login(t, "admin", adminPass)
	reset := "a reset password"
	expect(t, 200, "PUT", user, admin, ProfileChange{FullName: "Name of ann", Email: "ann@example.com", Password: &reset}, nil)
	testenv.Eventually(t, 3*time.Second, "ann's token gets 401 after a manager's reset", func() bool {
		status, _ := do(t, "GET", user, fresh, nil)
		return status == http.StatusUnauthorized
	})
	ts.login(t, "ann", reset)
	expect(t, 200, "GET", user, admin, nil, nil) // the manager's own token is untouched
}
