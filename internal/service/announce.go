package service

import (
	"cmp"
	"context"

	"github.com/msdemo/msdemo/internal/registry"
)

// announce tells the gateway about this instance on the registry exchange, every few
// seconds until ctx is done, with Config.AdvertiseURL or the listener's loopback URL. A
// failure is logged, not returned: a service the gateway does not hear from is still
// reachable at its own address, and the gateway's static upstreams may cover it.
func (rt *Runtime) announce(ctx context.Context) {
	inst := registry.Instance{Service: rt.Name, Instance: registry.InstanceID(rt.Name),
		URL: cmp.Or(rt.AdvertiseURL, registry.LoopbackURL(rt.Listener.Addr()))}
	var opts []registry.Option
	if rt.RegistryExchange != "" {
		opts = append(opts, registry.WithExchange(rt.RegistryExchange))
	}
	if err := registry.Announce(ctx, rt.Bus, inst, 0, rt.Logger, opts...); err != nil {
		rt.Logger.Error("announce to the gateway", "error", err)
	}
}
