package product

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/service"
)

// Store is the product service's read model: categories, products and the order saga's
// reservations (one row per product and order: reserved, rejected or released) in a SQLite file,
// kept up to date from the events (Apply) and read by the handlers. Apply runs on one
// writer connection, so events are applied one at a time; reads use a pool of their own
// and, in WAL mode, never wait for the writer. A Store is safe for concurrent use.
type Store struct {
	write *sql.DB // one connection: Apply and Reset
	read  *sql.DB
}

var _ eventclient.ReadModel = (*Store)(nil)

// schemaVersion is the version of schema, kept in the file's user_version. Raise it with
// every change of schema (or of what Apply writes): the read model is then rebuilt from
// the events at start (ensureSchema).
const schemaVersion = 4

// schema creates the read model's tables, schemaTables, at schemaVersion in a file that
// has none of them.
const schema = `
CREATE TABLE categories (
	id      TEXT PRIMARY KEY,
	name    TEXT NOT NULL,
	version INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE products (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	description    TEXT NOT NULL,
	supplier       TEXT NOT NULL,
	category_id    TEXT NOT NULL,
	price_cents    INTEGER NOT NULL,
	units_in_stock INTEGER NOT NULL,
	version        INTEGER NOT NULL,
	deleted        INTEGER NOT NULL DEFAULT 0,
	added          INTEGER NOT NULL DEFAULT 0, -- the position of its product.added: newest first
	-- The pictures of its last product.image-set ('' and 0: none).
	image_id       TEXT NOT NULL DEFAULT '',
	image_width    INTEGER NOT NULL DEFAULT 0,
	image_height   INTEGER NOT NULL DEFAULT 0,
	thumb_id       TEXT NOT NULL DEFAULT '',
	thumb_width    INTEGER NOT NULL DEFAULT 0,
	thumb_height   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX products_by_name ON products (deleted, name COLLATE NOCASE, id);
CREATE INDEX products_by_category ON products (category_id, deleted, name COLLATE NOCASE, id);
CREATE INDEX products_by_price ON products (category_id, deleted, price_cents, id);
CREATE INDEX products_newest ON products (deleted, added DESC);
CREATE VIRTUAL TABLE products_fts USING fts5(name, description, supplier,
	content='products', content_rowid='rowid');
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
	INSERT INTO products_fts (rowid, name, description, supplier)
	VALUES (new.rowid, new.name, new.description, new.supplier);
END;
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
	INSERT INTO products_fts (products_fts, rowid, name, description, supplier)
	VALUES ('delete', old.rowid, old.name, old.description, old.supplier);
END;
CREATE TRIGGER products_fts_update AFTER UPDATE OF name, description, supplier ON products BEGIN
	INSERT INTO products_fts (products_fts, rowid, name, description, supplier)
	VALUES ('delete', old.rowid, old.name, old.description, old.supplier);
	INSERT INTO products_fts (rowid, name, description, supplier)
	VALUES (new.rowid, new.name, new.description, new.supplier);
END;
CREATE TABLE reservations (
	product_id TEXT NOT NULL,
	order_id   TEXT NOT NULL,
	quantity   INTEGER NOT NULL,
	state      TEXT NOT NULL,
	PRIMARY KEY (product_id, order_id)
);
CREATE INDEX reservations_by_order ON reservations (order_id);
CREATE TABLE checkpoint (
	one      INTEGER PRIMARY KEY CHECK (one = 1),
	store_id TEXT NOT NULL,
	position INTEGER NOT NULL
);
INSERT INTO checkpoint (one, store_id, position) VALUES (1, '', 0);
`

// schemaTables are the tables of schema; formerTables those of earlier versions that
// schema no longer makes.
var (
	// products_fts is the full-text index of the products' words (SQLite FTS5), kept by
	// triggers on products, so it is rebuilt with them.
	schemaTables = []string{"categories", "products", "products_fts", "reservations", "checkpoint"}
	formerTables []string
)

// ensureSchema makes the file hold the tables of schemaVersion. When its user_version
// differs (0: a new file, or one made before versions; another: an older or newer
// build's) or a table of schema is missing (deleted, to have it rebuilt), it drops
// schemaTables and formerTables and creates schema, empty at checkpoint 0, in one
// transaction on the writer connection (so processes opening the file at once take
// turns), and reports that it did: the subscription then rebuilds the read model from
// the events as it catches up, as it would from a deleted file.
func ensureSchema(ctx context.Context, write *sql.DB) (created bool, err error) {
	tx, err := write.BeginTx(ctx, nil) // _txlock=immediate: takes the write lock at once
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return false, fmt.Errorf("read the schema version: %w", err)
	}
	var found int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table'
		AND name IN (SELECT value FROM json_each(?))`, jsonList(schemaTables)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("look for the tables: %w", err)
	}
	if version == schemaVersion && found == len(schemaTables) {
		return false, tx.Commit()
	}
	for _, table := range slices.Concat(schemaTables, formerTables) {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS "`+table+`"`); err != nil {
			return false, fmt.Errorf("drop the tables of version %d: %w", version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return false, fmt.Errorf("create the tables of version %d: %w", schemaVersion, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return false, fmt.Errorf("record the schema version: %w", err)
	}
	return true, tx.Commit()
}

// jsonList is names as a JSON array, for json_each.
func jsonList(names []string) string {
	b, _ := json.Marshal(names)
	return string(b)
}

// OpenStore opens (creating if needed) the read model in the SQLite file at path, in WAL
// mode with a busy timeout, with the tables of schemaVersion (ensureSchema: tables of
// another version are replaced by empty ones). Close releases it.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	dsn := func(txlock string) string {
		q := url.Values{"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"}}
		if txlock != "" {
			q.Set("_txlock", txlock)
		}
		return "file:" + path + "?" + q.Encode()
	}
	write, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	if _, err := ensureSchema(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("create the read model in %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return &Store{write: write, read: read}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// Checkpoint returns the store followed and the position of the last event applied.
func (s *Store) Checkpoint(ctx context.Context) (storeID string, position int64, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT store_id, position FROM checkpoint`).Scan(&storeID, &position)
	if err != nil {
		return "", 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return storeID, position, nil
}

// Reset empties the read model, which from now on follows storeID from position 0.
func (s *Store) Reset(ctx context.Context, storeID string) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset read model: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM categories`, `DELETE FROM products`, `DELETE FROM reservations`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset read model: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE checkpoint SET store_id = ?, position = 0`, storeID); err != nil {
		return fmt.Errorf("reset read model: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reset read model: %w", err)
	}
	return nil
}

// Apply applies e and moves the checkpoint to its position, in one transaction. It is
// idempotent by stream version: an event at or below the aggregate's version changes
// nothing (only the checkpoint), one right above it is applied, and one further ahead is
// an error (an event of the stream is missing). Event types of the product stream that
// the catalog does not know yet still count as versions.
//
// An event that can never be applied (data that does not decode, a version gap, a stream
// that does not start with an added event) is an error wrapping bus.ErrPermanent, which
// the subscription dead-letters; other errors (the database) are worth trying again.
func (s *Store) Apply(ctx context.Context, storeID string, e event.Stored) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply %s: %w", e.Type, err)
	}
	defer tx.Rollback()
	if err := applyEvent(ctx, tx, e); err != nil {
		return fmt.Errorf("apply %s v%d of %s (position %d): %w", e.Type, e.Version, e.Stream, e.Position, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE checkpoint SET store_id = ?, position = max(position, ?)`,
		storeID, e.Position); err != nil {
		return fmt.Errorf("apply %s: move checkpoint: %w", e.Type, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply %s: commit: %w", e.Type, err)
	}
	return nil
}

// applyEvent changes the row of e's aggregate, if e is the next version of it.
func applyEvent(ctx context.Context, tx *sql.Tx, e event.Stored) error {
	table, id, ok := strings.Cut(e.Stream, "-")
	switch {
	case !ok || (table != "category" && table != "product"):
		return nil // not the catalog's
	case table == "category":
		table = "categories"
	default:
		table = "products"
	}
	var version int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM `+table+` WHERE id = ?`, id).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	switch {
	case e.Version <= version:
		return nil // applied before
	case e.Version > version+1:
		return fmt.Errorf("the read model is at version %d: events are missing: %w", version, bus.ErrPermanent)
	case version == 0 && e.Type != event.CategoryAdded && e.Type != event.ProductAdded:
		return fmt.Errorf("the stream's first event is %s, want an added event: %w", e.Type, bus.ErrPermanent)
	}

	var res sql.Result
	switch e.Type {
	case event.CategoryAdded:
		var d CategoryAddedData
		if err := decodeData(e, &d); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO categories (id, name, version) VALUES (?, ?, ?)`,
			id, d.Name, e.Version)
	case event.CategoryRenamed:
		var d CategoryRenamedData
		if err := decodeData(e, &d); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE categories SET name = ?, version = ? WHERE id = ?`, d.Name, e.Version, id)
	case event.CategoryDeleted:
		res, err = tx.ExecContext(ctx, `UPDATE categories SET deleted = 1, version = ? WHERE id = ?`, e.Version, id)
	case event.ProductAdded:
		var d ProductAddedData
		if err := decodeData(e, &d); err != nil {
			return err
		}
		f := d.ProductFields
		res, err = tx.ExecContext(ctx, `INSERT INTO products (id, name, description, supplier, category_id,
			price_cents, units_in_stock, version, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, f.Name, f.Description, f.Supplier, f.CategoryID, f.PriceCents, f.UnitsInStock, e.Version, e.Position)
	case event.ProductUpdated:
		var f ProductFields
		if err := decodeData(e, &f); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE products SET name = ?, description = ?, supplier = ?,
			category_id = ?, price_cents = ?, units_in_stock = ?, version = ? WHERE id = ?`,
			f.Name, f.Description, f.Supplier, f.CategoryID, f.PriceCents, f.UnitsInStock, e.Version, id)
	case event.ProductDeleted:
		res, err = tx.ExecContext(ctx, `UPDATE products SET deleted = 1, version = ? WHERE id = ?`, e.Version, id)
	case event.ProductImageSet:
		var d ImageSetData
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if !validImageID(string(d.ImageID)) || !validImageID(string(d.ThumbID)) ||
			min(d.Width, d.Height, d.ThumbWidth, d.ThumbHeight) < 1 {
			return fmt.Errorf("%s without the ids and sizes of two pictures: %w", e.Type, bus.ErrPermanent)
		}
		res, err = tx.ExecContext(ctx, `UPDATE products SET image_id = ?, image_width = ?, image_height = ?,
			thumb_id = ?, thumb_width = ?, thumb_height = ?, version = ? WHERE id = ?`,
			d.ImageID, d.Width, d.Height, d.ThumbID, d.ThumbWidth, d.ThumbHeight, e.Version, id)
	case event.ProductStockReserved, event.ProductStockRejected, event.ProductStockReleased:
		if table != "products" {
			return fmt.Errorf("%s on a category stream: %w", e.Type, bus.ErrPermanent)
		}
		res, err = applyStock(ctx, tx, id, e)
	default:
		// A type added later: the version moves on, so that the events after it apply.
		res, err = tx.ExecContext(ctx, `UPDATE `+table+` SET version = ? WHERE id = ?`, e.Version, id)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("changed %d rows, want 1: %w", n, bus.ErrPermanent)
	}
	return nil
}

func decodeData(e event.Stored, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode data: %v: %w", err, bus.ErrPermanent)
	}
	return nil
}

// Category returns the category id, or service.ErrNotFound when there is none or it was
// deleted.
func (s *Store) Category(ctx context.Context, id CategoryID) (Category, error) {
	var c Category
	err := s.read.QueryRowContext(ctx, `SELECT id, name, version FROM categories WHERE id = ? AND deleted = 0`, id).
		Scan(&c.ID, &c.Name, &c.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("category %s: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read category %s: %w", id, err)
	}
	return c, nil
}

// Categories returns up to limit categories ordered by name (without case) then id, those
// after the category after if it is not empty; more says whether there are others after
// them. An unknown after is a field error.
func (s *Store) Categories(ctx context.Context, limit int, after CategoryID) (cs []Category, more bool, err error) {
	q := `SELECT id, name, version FROM categories WHERE deleted = 0`
	args := []any{}
	if after != "" {
		var name string
		if err := s.read.QueryRowContext(ctx, `SELECT name FROM categories WHERE id = ?`, after).Scan(&name); err != nil {
			return nil, false, unknownAfter(err)
		}
		q += ` AND (name > ? COLLATE NOCASE OR (name = ? COLLATE NOCASE AND id > ?))`
		args = append(args, name, name, after)
	}
	q += ` ORDER BY name COLLATE NOCASE, id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list categories: %w", err)
	}
	defer rows.Close()
	cs = []Category{}
	for rows.Next() {
		var c Category
		if err := rows.Scan(&c.ID, &c.Name, &c.Version); err != nil {
			return nil, false, fmt.Errorf("list categories: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list categories: %w", err)
	}
	if len(cs) > limit {
		return cs[:limit], true, nil
	}
	return cs, false, nil
}

// AllCategories returns every category that is not deleted.
func (s *Store) AllCategories(ctx context.Context) ([]Category, error) {
	var all []Category
	var after CategoryID
	for {
		page, more, err := s.Categories(ctx, 1000, after)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if !more {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

const productColumns = `id, name, description, supplier, category_id, price_cents, units_in_stock, version, ` +
	`image_id, image_width, image_height, thumb_id, thumb_width, thumb_height`

func scanProduct(row interface{ Scan(...any) error }) (Product, error) {
	var p Product
	var image, thumb ImageRef
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Supplier, &p.CategoryID, &p.PriceCents, &p.UnitsInStock, &p.Version,
		&image.ID, &image.Width, &image.Height, &thumb.ID, &thumb.Width, &thumb.Height)
	p.Image, p.Thumbnail = refOf(image.ID, image.Width, image.Height), refOf(thumb.ID, thumb.Width, thumb.Height)
	return p, err
}

// Product returns the product id, or service.ErrNotFound when there is none or it was
// deleted.
func (s *Store) Product(ctx context.Context, id ProductID) (Product, error) {
	p, err := scanProduct(s.read.QueryRowContext(ctx, `SELECT `+productColumns+` FROM products WHERE id = ? AND deleted = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("product %s: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read product %s: %w", id, err)
	}
	return p, nil
}

// ProductOrder is how a list of products is ordered.
type ProductOrder string

// The orders of a list of products: by name (without case, the default), by price (lowest
// first), newest first (by when product.added was stored); ties by id.
const (
	ByName  ProductOrder = "name"
	ByPrice ProductOrder = "price"
	Newest  ProductOrder = "newest"
)

// Products returns up to limit products, of category if it is not empty, in order, those
// after the product after if it is not empty; more says whether there are others after
// them. An unknown after is a field error.
func (s *Store) Products(ctx context.Context, category CategoryID, order ProductOrder, limit int, after ProductID) (ps []Product, more bool, err error) {
	q := `SELECT ` + productColumns + ` FROM products WHERE deleted = 0`
	args := []any{}
	if category != "" {
		q += ` AND category_id = ?`
		args = append(args, category)
	}
	if after != "" {
		var name string
		var price, added int64
		err := s.read.QueryRowContext(ctx, `SELECT name, price_cents, added FROM products WHERE id = ?`, after).Scan(&name, &price, &added)
		if err != nil {
			return nil, false, unknownAfter(err)
		}
		switch order {
		case ByPrice:
			q += ` AND (price_cents > ? OR (price_cents = ? AND id > ?))`
			args = append(args, price, price, after)
		case Newest:
			q += ` AND (added < ? OR (added = ? AND id > ?))`
			args = append(args, added, added, after)
		default:
			q += ` AND (name > ? COLLATE NOCASE OR (name = ? COLLATE NOCASE AND id > ?))`
			args = append(args, name, name, after)
		}
	}
	switch order {
	case ByPrice:
		q += ` ORDER BY price_cents, id LIMIT ?`
	case Newest:
		q += ` ORDER BY added DESC, id LIMIT ?`
	default:
		q += ` ORDER BY name COLLATE NOCASE, id LIMIT ?`
	}
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list products: %w", err)
	}
	defer rows.Close()
	ps = []Product{}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list products: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list products: %w", err)
	}
	if len(ps) > limit {
		return ps[:limit], true, nil
	}
	return ps, false, nil
}

// searchWeights are bm25's weights of products_fts's columns: a word in the name counts
// ten times one in the description, one in the supplier three times.
const searchWeights = `10.0, 1.0, 3.0`

// Search returns the products (not deleted) whose name, description or supplier hold
// every word of words (each also as the start of a longer word, case-insensitive), best
// match first: the page of limit products after the first offset, and whether more
// follow.
func (s *Store) Search(ctx context.Context, words []string, limit, offset int) (ps []Product, more bool, err error) {
	var match []string
	for _, w := range words {
		match = append(match, `"`+strings.ReplaceAll(w, `"`, `""`)+`"*`)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+prefixed("p.", productColumns)+`
		FROM products_fts JOIN products p ON p.rowid = products_fts.rowid
		WHERE products_fts MATCH ? AND p.deleted = 0
		ORDER BY bm25(products_fts, `+searchWeights+`), p.name COLLATE NOCASE, p.id
		LIMIT ? OFFSET ?`, strings.Join(match, " "), limit+1, offset)
	if err != nil {
		return nil, false, fmt.Errorf("search products: %w", err)
	}
	defer rows.Close()
	ps = []Product{}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, false, fmt.Errorf("search products: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search products: %w", err)
	}
	if len(ps) > limit {
		return ps[:limit], true, nil
	}
	return ps, false, nil
}

// prefixed is columns, a comma-separated list, each with prefix.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ", ")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, ", ")
}

func unknownAfter(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return service.FieldErrors{"after": "unknown id: pass the next_after of the previous page"}
	}
	return fmt.Errorf("read page start: %w", err)
}

// ProductsInCategory counts the products of category that are not deleted.
func (s *Store) ProductsInCategory(ctx context.Context, category CategoryID) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE category_id = ? AND deleted = 0`, category).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count products of %s: %w", category, err)
	}
	return n, nil
}

// applyStock applies a saga event of product id (e.Type is product.stock-reserved,
// -rejected or -released): the units move, and the order's reservation is recorded.
func applyStock(ctx context.Context, tx *sql.Tx, id string, e event.Stored) (sql.Result, error) {
	var d StockData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	delta, state := int64(0), Rejected
	switch e.Type {
	case event.ProductStockReserved:
		delta, state = -d.Quantity, Reserved
	case event.ProductStockReleased:
		delta, state = d.Quantity, Released
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO reservations (product_id, order_id, quantity, state) VALUES (?, ?, ?, ?)
		ON CONFLICT (product_id, order_id) DO UPDATE SET quantity = excluded.quantity, state = excluded.state`,
		id, d.OrderID, d.Quantity, state)
	if err != nil {
		return nil, fmt.Errorf("record reservation of order %s: %w", d.OrderID, err)
	}
	return tx.ExecContext(ctx, `UPDATE products SET units_in_stock = units_in_stock + ?, version = ? WHERE id = ?`,
		delta, e.Version, id)
}

// errStale says that an append found the product's stream further on than the read
// model: the caller reads the stream (applyStream) and decides again.
var errStale = eventclient.ErrStale

// decideOrder applies e, an order event about product id's line of order orderID, and
// the decision it leads to, in one transaction: it reads the product's stock and its
// record of the order, asks decide (found is false for an unknown product), and, when
// decide returns an event, write appends it at the product's version. The stored event
// is applied in the same transaction, so the next decision about the product sees it,
// and with it, if last (e's last line), the checkpoint (e.Position). When write returns nil (the stream has moved on, or the
// decision was stored before a crash), nothing is written and the error is errStale.
func (s *Store) decideOrder(ctx context.Context, storeID string, e event.Stored, id ProductID, orderID string, last bool,
	decide func(s Stock, r Reservation, found bool) (event.New, bool),
	write func(ctx context.Context, version int64, decision event.New) (*event.Stored, error)) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var st Stock
	err = tx.QueryRowContext(ctx, `SELECT price_cents, units_in_stock, deleted, version FROM products WHERE id = ?`, id).
		Scan(&st.PriceCents, &st.UnitsInStock, &st.Deleted, &st.Version)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read product %s: %w", id, err)
	}
	r := Reservation{ProductID: id, OrderID: orderID}
	err = tx.QueryRowContext(ctx, `SELECT quantity, state FROM reservations WHERE product_id = ? AND order_id = ?`, id, orderID).
		Scan(&r.Quantity, &r.State)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read reservation of order %s: %w", orderID, err)
	}
	if decision, ok := decide(st, r, found); ok {
		stored, err := write(ctx, st.Version, decision)
		if err != nil {
			return err
		}
		if stored == nil {
			return errStale
		}
		if err := applyEvent(ctx, tx, *stored); err != nil {
			return fmt.Errorf("apply %s v%d of %s: %w", stored.Type, stored.Version, stored.Stream, err)
		}
	}
	if last {
		if _, err := tx.ExecContext(ctx, `UPDATE checkpoint SET store_id = ?, position = max(position, ?)`,
			storeID, e.Position); err != nil {
			return fmt.Errorf("move checkpoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// applyStream applies the events of a product stream that the read model lacks, without
// moving the checkpoint: the bus brings them again later, and they are skipped by version.
func (s *Store) applyStream(ctx context.Context, events []event.Stored) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catch up a product: %w", err)
	}
	defer tx.Rollback()
	for _, e := range events {
		if err := applyEvent(ctx, tx, e); err != nil {
			return fmt.Errorf("catch up %s v%d of %s: %w", e.Type, e.Version, e.Stream, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catch up a product: %w", err)
	}
	return nil
}

// OrderReservations returns the reservations held for order orderID (state reserved),
// one per line, by product id.
func (s *Store) OrderReservations(ctx context.Context, orderID string) ([]Reservation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT product_id, order_id, quantity, state FROM reservations
		WHERE order_id = ? AND state = ? ORDER BY product_id`, orderID, Reserved)
	if err != nil {
		return nil, fmt.Errorf("read the reservations of order %s: %w", orderID, err)
	}
	defer rows.Close()
	var rs []Reservation
	for rows.Next() {
		var r Reservation
		if err := rows.Scan(&r.ProductID, &r.OrderID, &r.Quantity, &r.State); err != nil {
			return nil, fmt.Errorf("read the reservations of order %s: %w", orderID, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the reservations of order %s: %w", orderID, err)
	}
	return rs, nil
}

// Reservations returns the records of orders of product id (every product's if id is
// empty), ordered by product and order.
func (s *Store) Reservations(ctx context.Context, id ProductID) ([]Reservation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT product_id, order_id, quantity, state FROM reservations
		WHERE ? = '' OR product_id = ? ORDER BY product_id, order_id`, id, id)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	defer rows.Close()
	rs := []Reservation{}
	for rows.Next() {
		var r Reservation
		if err := rows.Scan(&r.ProductID, &r.OrderID, &r.Quantity, &r.State); err != nil {
			return nil, fmt.Errorf("list reservations: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return rs, nil
}
