package customer

import (
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
)

// The customer service signs tokens: without a token key it refuses to start, with an
// error that names the setting, instead of signing with an empty key.
func TestRunWithoutTokenKeyFails(t *testing.T) {
	t.Parallel()
	cfg := Config{Service: service.Config{Addr: testenv.FreeAddr(t), RabbitMQURL: testenv.RabbitMQURL(),
		TokenKey: auth.Key{}}, RedisURL: testenv.RedisURL(), KeyPrefix: testenv.Name(t) + ":"}
	err := Run(t.Context(), cfg, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "TokenKey") {
		t.Fatalf("Run with the zero auth.Key: got %v, want an error about Config.TokenKey", err)
	}
}
