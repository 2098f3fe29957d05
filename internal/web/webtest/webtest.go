// Package webtest drives the sites in tests: Browser, a plain HTTP client with a cookie
// jar (a browser without JavaScript) whose answers are goquery documents, its
// Server-Sent Events, and Chromium, a headless Chromium for the real-browser runs.
package webtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// Browser is a plain HTTP client with a cookie jar: a browser without JavaScript. It
// follows redirects. A failed request or an answer that is not HTML fails T.
type Browser struct {
	T      testing.TB
	Base   string // the site's URL; paths are relative to it
	Client *http.Client
}

// NewBrowser returns a browser of the site at base with an empty cookie jar, failing t.
func NewBrowser(t testing.TB, base string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Base: base, Client: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

// Page is an answer: its final URL (after redirects, without the site's base), status and
// document.
type Page struct {
	URL    string
	Status int
	Doc    *goquery.Document
}

// Get opens path.
func (b *Browser) Get(path string) Page {
	b.T.Helper()
	return b.Do(http.MethodGet, path, nil, nil)
}

// Post submits form to path, with header added.
func (b *Browser) Post(path string, form url.Values, header http.Header) Page {
	b.T.Helper()
	return b.Do(http.MethodPost, path, form, header)
}

// PostFile submits a multipart/form-data form to path, as a browser posts a form with a
// file input: the fields of form, then file as the file field fileField (named
// fileName; a browser sends an empty file without a name when none was chosen).
func (b *Browser) PostFile(path string, form url.Values, fileField, fileName string, file []byte) Page {
	b.T.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, vs := range form {
		for _, v := range vs {
			_ = w.WriteField(k, v)
		}
	}
	part, err := w.CreateFormFile(fileField, fileName)
	if err != nil {
		b.T.Fatal(err)
	}
	part.Write(file)
	w.Close()
	return b.send(http.MethodPost, path, &body, w.FormDataContentType(), nil)
}

// Do sends method path with form (nil for none) as its body and header added.
func (b *Browser) Do(method, path string, form url.Values, header http.Header) Page {
	b.T.Helper()
	if form == nil {
		return b.send(method, path, nil, "", header)
	}
	return b.send(method, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", header)
}

// send sends method path with body (nil for none) of contentType, and header added.
func (b *Browser) send(method, path string, body io.Reader, contentType string, header http.Header) Page {
	b.T.Helper()
	req, err := http.NewRequest(method, b.Base+path, body)
	if err != nil {
		b.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		b.T.Fatalf("%s %s: parse HTML: %v", method, path, err)
	}
	return Page{URL: strings.TrimPrefix(resp.Request.URL.String(), b.Base), Status: resp.StatusCode, Doc: doc}
}

// TestID returns the text of the first element with data-testid id, trimmed.
func (p Page) TestID(id string) string {
	return strings.TrimSpace(p.Doc.Find(`[data-testid="` + id + `"]`).First().Text())
}

// Count returns how many elements have data-testid id.
func (p Page) Count(id string) int {
	return p.Doc.Find(`[data-testid="` + id + `"]`).Length()
}

// Value returns the value of the first input named name.
func (p Page) Value(name string) string {
	return p.Doc.Find(`[name="`+name+`"]`).First().AttrOr("value", "")
}

// SSEEvent is one Server-Sent Event: its name and its data lines, each ending in "\n".
type SSEEvent struct{ Name, Data string }

// Events opens the SSE stream at path with b's session and returns its named events
// (keep-alive comments skipped; 1000 are buffered). A stream that does not open with
// 200 text/event-stream fails b.T. The stream ends when ctx is done; the channel is never
// closed, so read it in a select with ctx.Done.
func (b *Browser) Events(ctx context.Context, path string) <-chan SSEEvent {
	t := b.T
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.Base+path, nil)
	client := *b.Client
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: got %d %s, want 200 text/event-stream", path, resp.StatusCode, ct)
	}
	events := make(chan SSEEvent, 1000)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev SSEEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ") + "\n"
			case line == "" && ev.Name != "":
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
				ev = SSEEvent{}
			}
		}
	}()
	return events
}
