package admin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/web"
)

// handleOrders serves GET /orders[?status=&after=]: every customer's orders, newest
// first; the first page grows and changes live (/events/orders).
func (s *server) handleOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, after := q.Get("status"), q.Get("after")
	if status != "" && !slices.Contains([]string{"pending", "approved", "rejected"}, status) {
		status = ""
	}
	orders, next, err := s.api.Orders(r.Context(), s.token(r), status, after, pageSize)
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	v := ordersView{Orders: web.OrderViews(r.Context(), s.api, orders), Status: status, NextAfter: next,
		Live: after == "" && status == "", Paged: after != ""}
	s.site.Render(w, r, http.StatusOK, "Orders", ordersPage(v))
}

// handleOrder serves GET /orders/{id}: the order with its timeline, live, and its
// trace: the id in its events' metadata, and the spans of it that this process keeps.
func (s *server) handleOrder(w http.ResponseWriter, r *http.Request) {
	o, err := s.api.Order(r.Context(), s.token(r), chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	var stream streamPage // no stream yet (the event store is behind the order service) shows no trace
	if err := s.api.Get(r.Context(), s.token(r), "/eventstore/streams/order-"+url.PathEscape(o.ID), nil, &stream); err != nil &&
		web.StatusOf(err) != http.StatusNotFound {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, "Order "+o.ID, orderPage(web.OrderViewOf(r.Context(), s.api, o),
		web.NewTraceView(web.TraceIDOf(stream.Events))))
}

// handleFeedEvents serves GET /events/feed: every stored event as a row of the
// dashboard's feed (SSE event "feed"), newest on top. A browser that falls more than
// feedBacklog events behind, or whose stream loses the bus, is told so in the feed
// (feedGap: reload to see what was missed) instead of missing events silently.
func (s *server) handleFeedEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := web.NewOutbox(feedBacklog, &web.SSEMessage{Event: "feed", Key: "feed-gap", HTML: feedGap()})
	events := s.hub.Subscribe(ctx)
	go func() {
		defer out.Close()
		for e := range events {
			out.Send(ctx, web.SSEMessage{Event: "feed", Key: "feed-" + strconv.FormatInt(e.Position, 10), HTML: eventItem(newEventRow(e))})
		}
		if ctx.Err() == nil { // the subscription ended under the stream: events may be missing
			out.Send(ctx, web.SSEMessage{Event: "feed", Key: "feed-gap", HTML: feedGap()})
		}
	}()
	web.ServeSSE(w, r, out, s.keepAlive)
}

// feedBacklog is how many events may wait for a slow browser's feed.
const feedBacklog = 256

// handleOrderEvents serves GET /events/orders: the orders as they change, pushed by the
// site's follower (web.Hub.Follow) when the order service announces a change: for each
// changed order "order-<id>" (the cells of its row on /orders) and "order-detail-<id>"
// (the body of /orders/{id}); for a new order also "order-new" (a whole row, which
// /orders puts on top). The manager's token reads the order once for every manager's
// browser that follows it.
//
// The stream starts with what the page shows as it is now, since an order may have been
// decided between the page's render and the stream's start: with ?order=<id> (the order
// page) that order, without (the live list, the latest page) the cells of each row.
func (s *server) handleOrderEvents(w http.ResponseWriter, r *http.Request) {
	who := web.Follow{ID: r.URL.Query().Get("order"), AnyOwner: true}
	out := s.hub.Follow(r.Context(), web.FollowOrders(s.api, s.token(r), who, pageSize,
		web.OrderFragments{Cells: orderCells, Detail: orderDetail, Row: orderRow}))
	web.ServeSSE(w, r, out, s.keepAlive)
}

func newEventRow(e event.Stored) eventRow {
	return eventRow{Position: strconv.FormatInt(e.Position, 10), Type: e.Type, Stream: e.Stream,
		Version: strconv.FormatInt(e.Version, 10), At: web.FormatTime(e.RecordedAt), User: e.Metadata.User}
}

// feedLimit is how many events a page of the explorer shows.
const feedLimit = 50

// handleFeed serves GET /eventstore[?after=]: a page of the global feed, oldest first;
// without after, the latest page.
func (s *server) handleFeed(w http.ResponseWriter, r *http.Request) {
	ctx, token := r.Context(), s.token(r)
	var page feedPage
	var err error
	after, perr := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if perr != nil || after < 0 {
		page, err = s.latest(ctx, token, feedLimit)
		after = max(page.Head-feedLimit, 0)
	} else {
		page, err = s.feed(ctx, token, after, feedLimit)
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	v := feedView{Head: strconv.FormatInt(page.Head, 10)}
	for _, e := range page.Events {
		v.Events = append(v.Events, newEventRow(e))
	}
	if after > 0 {
		v.Older = "/eventstore?after=" + strconv.FormatInt(max(after-feedLimit, 0), 10)
	}
	if page.NextAfter < page.Head && len(page.Events) > 0 {
		v.Newer = "/eventstore?after=" + strconv.FormatInt(page.NextAfter, 10)
	}
	s.site.Render(w, r, http.StatusOK, "Event store", feedPageView(v))
}

// handleStreamFind serves GET /eventstore/streams?stream=: the explorer's search form.
func (s *server) handleStreamFind(w http.ResponseWriter, r *http.Request) {
	stream := strings.TrimSpace(r.URL.Query().Get("stream"))
	if stream == "" {
		web.Redirect(w, r, "/eventstore")
		return
	}
	web.Redirect(w, r, "/eventstore/streams/"+url.PathEscape(stream))
}

// handleStream serves GET /eventstore/streams/{stream}: every event of one stream.
func (s *server) handleStream(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "stream")
	var page streamPage
	if err := s.api.Get(r.Context(), s.token(r), "/eventstore/streams/"+url.PathEscape(name), nil, &page); err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	v := streamView{Stream: cmp.Or(page.Stream, name), Version: strconv.FormatInt(page.Version, 10)}
	for _, e := range page.Events {
		v.Events = append(v.Events, newEventRow(e))
	}
	if id, ok := strings.CutPrefix(v.Stream, "order-"); ok {
		v.OrderID = id
	}
	s.site.Render(w, r, http.StatusOK, "Stream "+v.Stream, streamPageView(v))
}

// handleEvent serves GET /eventstore/events/{position}: one event with its JSON.
func (s *server) handleEvent(w http.ResponseWriter, r *http.Request) {
	pos, err := strconv.ParseInt(chi.URLParam(r, "position"), 10, 64)
	if err != nil || pos < 1 {
		s.site.NotFound(w, r)
		return
	}
	page, err := s.feed(r.Context(), s.token(r), pos-1, 1)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	if len(page.Events) == 0 || page.Events[0].Position != pos {
		s.site.NotFound(w, r)
		return
	}
	e := page.Events[0]
	raw, _ := json.MarshalIndent(e, "", "  ")
	s.site.Render(w, r, http.StatusOK, "Event "+strconv.FormatInt(pos, 10), eventPage(eventView{Row: newEventRow(e), JSON: string(raw)}))
}

// handleDeadLetters serves GET /dead-letters: each service's dead letters. A service that
// does not answer is shown as such; the others are still listed.
func (s *server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	var v deadLettersView
	for _, svc := range deadLetterServices {
		sec := deadSection{Service: svc}
		var list struct {
			DeadLetters []deadLetter `json:"dead_letters"`
		}
		err := s.api.Get(r.Context(), s.token(r), "/"+svc+"/dead-letters", nil, &list)
		switch status := web.StatusOf(err); {
		case err == nil:
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			s.site.Error(w, r, err)
			return
		default:
			s.logger.WarnContext(r.Context(), "list dead letters", "service", svc, "error", err)
			sec.Error = "The " + svc + " service does not answer right now; try again in a moment."
		}
		for _, d := range list.DeadLetters {
			row := deadRow{ID: d.ID, Type: d.Type, RoutingKey: d.RoutingKey, Reason: d.Reason, Count: strconv.FormatInt(d.Count, 10),
				Body: prettyJSON(d.Body)}
			if d.DiedAt != nil {
				row.DiedAt = web.FormatTime(*d.DiedAt)
			}
			sec.Letters = append(sec.Letters, row)
		}
		v.Sections = append(v.Sections, sec)
	}
	s.site.Render(w, r, http.StatusOK, "Dead letters", deadLettersPage(v))
}

// prettyJSON indents a JSON body; a JSON string (a body that was not JSON) is shown as
// its text.
func prettyJSON(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// deadService is the {service} of a dead-letter route, if it is one.
func deadService(r *http.Request) (string, bool) {
	svc := chi.URLParam(r, "service")
	return svc, slices.Contains(deadLetterServices, svc)
}

// handleDeadReplayAll serves POST /dead-letters/{service}/replay.
func (s *server) handleDeadReplayAll(w http.ResponseWriter, r *http.Request) {
	svc, ok := deadService(r)
	if !ok {
		s.site.NotFound(w, r)
		return
	}
	var res struct {
		Replayed int `json:"replayed"`
	}
	if err := s.api.Post(r.Context(), s.token(r), "/"+svc+"/dead-letters/replay", nil, &res); err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, strconv.Itoa(res.Replayed)+" dead letters of "+svc+" replayed.")
	web.Redirect(w, r, "/dead-letters")
}

// handleDeadReplay serves POST /dead-letters/{service}/{id}/replay.
func (s *server) handleDeadReplay(w http.ResponseWriter, r *http.Request) {
	s.takeDeadLetter(w, r, http.MethodPost, "/replay", "replayed: it is back in the "+chi.URLParam(r, "service")+" service's queue")
}

// handleDeadDiscard serves POST /dead-letters/{service}/{id}/discard.
func (s *server) handleDeadDiscard(w http.ResponseWriter, r *http.Request) {
	s.takeDeadLetter(w, r, http.MethodDelete, "", "discarded for good")
}

func (s *server) takeDeadLetter(w http.ResponseWriter, r *http.Request, method, suffix, done string) {
	svc, ok := deadService(r)
	if !ok {
		s.site.NotFound(w, r)
		return
	}
	id := chi.URLParam(r, "id")
	err := s.api.Do(r.Context(), s.token(r), method, "/"+svc+"/dead-letters/"+url.PathEscape(id)+suffix, nil, nil)
	switch status := web.StatusOf(err); {
	case err == nil:
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Dead letter "+id+" "+done+".")
	case status == http.StatusNotFound:
		s.sessions.AddFlash(r.Context(), web.FlashInfo, "Dead letter "+id+" is no longer there (replayed or discarded meanwhile).")
	default:
		s.site.Error(w, r, err)
		return
	}
	web.Redirect(w, r, "/dead-letters")
}

// handleServices serves GET /services: the instances the gateway routes to, when each
// was last heard from, and the static fallbacks.
func (s *server) handleServices(w http.ResponseWriter, r *http.Request) {
	var reg registryView
	if err := s.api.Get(r.Context(), s.token(r), "/registry", nil, &reg); err != nil {
		s.site.Error(w, r, err)
		return
	}
	ttl := time.Duration(reg.TTLSeconds * float64(time.Second))
	v := servicesView{TTL: ttl.Round(time.Second).String()}
	now := time.Now()
	seen := map[string]bool{}
	for _, in := range reg.Instances {
		age := now.Sub(in.LastSeen)
		row := instanceRow{Service: in.Service, Instance: in.Instance, URL: in.URL, LastSeen: web.FormatTime(in.LastSeen),
			Ago: age.Round(time.Second).String() + " ago", Healthy: ttl <= 0 || age <= ttl}
		v.Instances = append(v.Instances, row)
		seen[in.Service] = seen[in.Service] || row.Healthy
	}
	slices.SortFunc(v.Instances, func(a, b instanceRow) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Instance, b.Instance))
	})
	for _, svc := range registry.Upstreams() {
		v.Services = append(v.Services, serviceHealth{Service: svc, Up: seen[svc], Static: reg.Static[svc]})
	}
	for svc, u := range reg.Static {
		v.Static = append(v.Static, staticRow{Service: svc, URL: u})
	}
	slices.SortFunc(v.Static, func(a, b staticRow) int { return strings.Compare(a.Service, b.Service) })
	s.site.Render(w, r, http.StatusOK, "Services", servicesPage(v))
}
