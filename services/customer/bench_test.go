package customer

import (
	"fmt"
	"testing"
)

// The benchmarks call the service directly (no gateway: systest.Start takes a
// *testing.T), over loopback HTTP, with a real event store and Redis.

// BenchmarkRegisterLogin registers a new customer and logs in: two bcrypt hashes (cost
// 10), one append, the wait for the read model.
func BenchmarkRegisterLogin(b *testing.B) {
	cfg := testConfig(b, startEventStore(b))
	base := "http://" + runService(b, cfg).cfg.Service.Addr
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("user%d", i)
		expect(b, 201, "POST", base+"/users", "", Registration{Username: name, FullName: "U",
			Email: "u@example.com", Password: "password " + name}, nil)
		expect(b, 200, "POST", base+"/login", "", Credentials{name, "password " + name}, nil)
	}
}

// BenchmarkSetCreditThenGet is a manager's credit change and the GET that sees it.
func BenchmarkSetCreditThenGet(b *testing.B) {
	cfg := testConfig(b, startEventStore(b))
	base := "http://" + runService(b, cfg).cfg.Service.Addr
	token := managerToken(cfg.Service.TokenKey)
	version := int64(1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		expect(b, 200, "PUT", base+"/users/admin/credit", token, map[string]int64{"credit_cents": int64(i + 1), "expected_version": version}, nil)
		var got credit
		expect(b, 200, "GET", base+"/users/admin/credit", token, nil, &got)
		if version++; got.Version != version {
			b.Fatalf("GET after PUT: got version %d, want %d", got.Version, version)
		}
	}
}
