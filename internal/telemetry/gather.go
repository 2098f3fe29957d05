package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A Source is where a reader of metrics (the admin site's system page) gathers metric
// families from: the registry of its own process (Local) or another process's /metrics
// (Remote). Gather returns every family the source has now; an unreachable source is an
// error.
type Source interface {
	Gather(ctx context.Context) ([]*dto.MetricFamily, error)
	// Name says where the source is (for messages): "this process" or the URL.
	Name() string
}

// Local is the source of the registry c records into: every component of c's process,
// since one Metrics serves them all. It is nil for a nil c (metrics off).
func Local(c *Component) Source {
	if c == nil {
		return nil
	}
	return local{c.m}
}

type local struct{ m *Metrics }

func (l local) Gather(context.Context) ([]*dto.MetricFamily, error) { return l.m.registry.Gather() }
func (l local) Name() string                                        { return "this process" }

// Remote is the source of another process's GET /metrics at URL (the text format, parsed
// with expfmt), read with Client (http.DefaultClient if nil). The families come sorted by
// name, as a registry gathers them.
type Remote struct {
	URL    string
	Client *http.Client
}

// Gather reads r.URL once, within ctx.
func (r Remote) Gather(ctx context.Context) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics source %s: %w", r.URL, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics source %s: %w", r.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("metrics source %s: got %s, want 200", r.URL, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("metrics source %s: got Content-Type %q, want the Prometheus text format", r.URL, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics source %s: %w", r.URL, err)
	}
	families := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		families = append(families, mf)
	}
	slices.SortFunc(families, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return families, nil
}

// Name is r.URL.
func (r Remote) Name() string { return r.URL }
