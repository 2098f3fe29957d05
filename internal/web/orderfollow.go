package web

import (
	"context"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/view"
)

// OrderFragments are a site's renderings of one order for its live pages.
type OrderFragments struct {
	Cells  func(OrderView) templ.Component // the cells of its row on the list: SSE event "order-<id>"
	Detail func(OrderView) templ.Component // the body of its page: "order-detail-<id>"
	// Row, if set, is a whole row for an order just placed, which the list puts on top:
	// "order-new". Without it a list shows new orders when it is loaded again.
	Row func(OrderView) templ.Component
}

// FollowOrders completes who, which says whose orders a browser may see (Owner or
// AnyOwner) and which it follows (ID: the page of that order; empty: the list), into the
// Follow of its stream of orders, read through api with the browser's token and
// rendered by f. A list's stream starts with its first page: the latest listSize orders.
func FollowOrders(api *Client, token string, who Follow, listSize int, f OrderFragments) Follow {
	id := who.ID
	return Follow{View: view.Orders, ID: id, Owner: who.Owner, AnyOwner: who.AnyOwner,
		Read: func(ctx context.Context, c view.Change) ([]SSEMessage, error) {
			o, err := api.Order(ctx, token, c.ID)
			if err != nil {
				return nil, err
			}
			v := OrderViewOf(ctx, api, o)
			msgs := []SSEMessage{{Event: "order-" + o.ID, HTML: f.Cells(v)}, {Event: "order-detail-" + o.ID, HTML: f.Detail(v)}}
			if c.Created && f.Row != nil {
				msgs = append(msgs, SSEMessage{Event: "order-new", Key: "order-new-" + o.ID, Once: true, HTML: f.Row(v)})
			}
			return msgs, nil
		},
		Current: func(ctx context.Context) ([]SSEMessage, error) {
			if id != "" {
				o, err := api.Order(ctx, token, id)
				if err != nil {
					return nil, err // not the user's, or the API is down
				}
				return []SSEMessage{{Event: "order-detail-" + id, HTML: f.Detail(OrderViewOf(ctx, api, o))}}, nil
			}
			orders, _, err := api.Orders(ctx, token, "", "", listSize)
			if err != nil {
				return nil, err
			}
			views := OrderViews(ctx, api, orders)
			msgs := make([]SSEMessage, 0, len(views))
			for _, v := range views {
				msgs = append(msgs, SSEMessage{Event: "order-" + v.ID, HTML: f.Cells(v)})
			}
			return msgs, nil
		}}
}
