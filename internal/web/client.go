package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Client calls the shop's REST API through the gateway. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the gateway at baseURL (GATEWAY_URL). hc nil means a client
// with a 10 s timeout that sends the traceparent of a call's ctx (telemetry.TraceTransport).
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second, Transport: telemetry.TraceTransport("site", nil)}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: hc}
}

// APIError is an answer of the API that is not a 2xx: its status, message and, for a 400,
// a message per invalid field (the API's {"error", "fields"}).
type APIError struct {
	Status  int
	Message string
	Fields  map[string]string
	// RetryAfter is the answer's Retry-After header (a 429's seconds to wait), or "".
	RetryAfter string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("api: %d %s", e.Status, e.Message)
}

// ErrUnavailable is wrapped by the errors of calls that did not reach the gateway (or that
// the gateway answered with 502, 503 or 504), so that the sites show "a service is down".
var ErrUnavailable = errors.New("the shop's API is not reachable")

// StatusOf returns the HTTP status that err stands for: 503 for ErrUnavailable (the
// gateway unreachable, or its 502, 503 or 504), the APIError's status, 500 for anything
// else.
func StatusOf(err error) int {
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrUnavailable): // before the APIError a 502 or 504 also is
		return http.StatusServiceUnavailable
	case errors.As(err, &apiErr):
		return apiErr.Status
	default:
		return http.StatusInternalServerError
	}
}

// RetryAfter returns the Retry-After of err, an *APIError, or "".
func RetryAfter(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.RetryAfter
	}
	return ""
}

// FieldErrors returns the field messages of a 400 from the API, or nil for another error.
func FieldErrors(err error) map[string]string {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest {
		if apiErr.Fields == nil {
			return map[string]string{}
		}
		return apiErr.Fields
	}
	return nil
}

// newRequest is a request to the API's path as the bearer of token ("" for none), with
// body of contentType if body is not nil, and the browser's address and the page's
// request id from ctx.
func (c *Client) newRequest(ctx context.Context, token, method, path, contentType string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if a := clientAddress(ctx); a != "" {
		req.Header.Set("X-Forwarded-For", a) // the browser's (WithClientAddress)
	}
	if id := middleware.GetRequestID(ctx); id != "" {
		req.Header.Set(middleware.RequestIDHeader, id) // the page's request id, for the API's logs
	}
	return req, nil
}

// Get calls GET path (with query, if any) as the bearer of token ("" for none) and decodes
// the JSON answer into out.
func (c *Client) Get(ctx context.Context, token, path string, query url.Values, out any) error {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return c.Do(ctx, token, http.MethodGet, path, nil, out)
}

// Post calls POST path with in as JSON and decodes the answer into out (nil: ignore it).
func (c *Client) Post(ctx context.Context, token, path string, in, out any) error {
	return c.Do(ctx, token, http.MethodPost, path, in, out)
}

// Put calls PUT path with in as JSON and decodes the answer into out (nil: ignore it).
func (c *Client) Put(ctx context.Context, token, path string, in, out any) error {
	return c.Do(ctx, token, http.MethodPut, path, in, out)
}

// Do calls method path of the API. A 2xx answer is decoded into out (when out is not nil);
// any other answer is an *APIError (502, 503 and 504 also wrap ErrUnavailable), and a
// failure to reach the gateway wraps ErrUnavailable.
func (c *Client) Do(ctx context.Context, token, method, path string, in, out any) error {
	var body []byte
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body, contentType = b, "application/json"
	}
	return c.send(ctx, token, method, path, contentType, body, out)
}

// Upload calls PUT path with file as the body, of contentType, and decodes the answer
// into out (nil: ignore it), as Do does.
func (c *Client) Upload(ctx context.Context, token, path, contentType string, file []byte, out any) error {
	return c.send(ctx, token, http.MethodPut, path, contentType, file, out)
}

// send is Do with the body already encoded: body of contentType ("" and nil for none).
func (c *Client) send(ctx context.Context, token, method, path, contentType string, body []byte, out any) error {
	req, err := c.newRequest(ctx, token, method, path, contentType, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		var e struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		if json.Unmarshal(raw, &e) == nil {
			apiErr.Message, apiErr.Fields = e.Error, e.Fields
		}
		if apiErr.Message == "" {
			apiErr.Message = http.StatusText(resp.StatusCode)
		}
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return fmt.Errorf("%s %s: %w: %w", method, path, ErrUnavailable, apiErr)
		}
		return apiErr
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}
