package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/web"
)

func TestFormatSSE(t *testing.T) {
	html := templ.Raw("<tr>\n<td>approved</td>\n</tr>")
	got, err := web.FormatSSE(context.Background(), web.SSEMessage{Event: "order-42", HTML: html})
	if err != nil {
		t.Fatal(err)
	}
	want := "event: order-42\ndata: <tr>\ndata: <td>approved</td>\ndata: </tr>\n\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/invalid":
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid input","fields":{"email":"is not an email"}}`))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"no instance of order"}`))
		case "/bad-gateway": // the gateway's upstream died mid-request
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"error":"cannot reach product"}`))
		case "/gateway-timeout":
			w.WriteHeader(http.StatusGatewayTimeout)
		case "/token":
			if r.Header.Get("Authorization") != "Bearer secret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	c := web.NewClient(srv.URL, nil)
	ctx := context.Background()

	err := c.Post(ctx, "", "/invalid", map[string]string{}, nil)
	if got := web.FieldErrors(err)["email"]; got != "is not an email" {
		t.Errorf("400: field error got %q, want %q", got, "is not an email")
	}
	err = c.Get(ctx, "", "/down", nil, nil)
	if !errors.Is(err, web.ErrUnavailable) || web.StatusOf(err) != http.StatusServiceUnavailable {
		t.Errorf("503: got %v (status %d), want ErrUnavailable and 503", err, web.StatusOf(err))
	}
	// A 502 or 504 is a service down too: the sites show "a service is down" (503), not
	// their 500 page (the chaos soak found the storefront answering 500 while product
	// restarted).
	for _, path := range []string{"/bad-gateway", "/gateway-timeout"} {
		err = c.Get(ctx, "", path, nil, nil)
		if !errors.Is(err, web.ErrUnavailable) || web.StatusOf(err) != http.StatusServiceUnavailable {
			t.Errorf("%s: got %v (status %d), want ErrUnavailable and 503", path, err, web.StatusOf(err))
		}
	}
	var out struct{ OK bool }
	if err := c.Get(ctx, "secret", "/token", nil, &out); err != nil || !out.OK {
		t.Errorf("with token: got %v %v, want ok", out, err)
	}
	if got := web.StatusOf(c.Get(ctx, "", "/token", nil, nil)); got != http.StatusUnauthorized {
		t.Errorf("without token: got %d, want 401", got)
	}
	closed := web.NewClient("http://127.0.0.1:1", nil)
	if err := closed.Get(ctx, "", "/", nil, nil); !errors.Is(err, web.ErrUnavailable) {
		t.Errorf("unreachable gateway: got %v, want ErrUnavailable", err)
	}
}

func TestFieldMarksErrors(t *testing.T) {
	var b strings.Builder
	err := web.Field(web.FieldProps{Name: "email", Label: "Email", Value: "x", Error: "is not an email"},
		templ.Attributes{"data-x": "1"}).Render(context.Background(), &b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`for="f-email"`, `id="f-email"`, `aria-invalid="true"`,
		`aria-describedby="f-email-error"`, `data-x="1"`, `value="x"`, `data-testid="error-email"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("field HTML %s: missing %s", b.String(), want)
		}
	}
}
