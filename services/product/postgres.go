package product

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/service"
)

// Images keeps the bytes of the products' pictures in the service's PostgreSQL database,
// one row per picture keyed by its ImageID (the SHA-256 of its bytes). PostgreSQL is
// where they live because every replica of the service reaches the same server and it
// keeps what it committed across restarts, which neither a replica's SQLite file nor its
// disk does; the event store carries only the ids (product.image-set), not megabytes.
// Rows are only ever added: the same bytes stored twice are one row, and a row is never
// changed, so a replica serves exactly what another stored. An Images is safe for
// concurrent use.
//
// Unlike the read model, the rows are not a projection of the events: nothing could
// rebuild them. The table is kept across schema versions (postgres.Schema.Kept), and a
// picture is committed durably (synchronous_commit on) before the event that names it is
// appended.
type Images struct {
	pool *pgxpool.Pool
}

// imagesSchema is the pictures' table.
var imagesSchema = postgres.Schema{Name: "product images", Version: 1,
	Kept: []string{"product_images"}, Create: `
CREATE TABLE IF NOT EXISTS product_images (
	id           text PRIMARY KEY, -- hex SHA-256 of bytes
	content_type text NOT NULL,
	width        integer NOT NULL,
	height       integer NOT NULL,
	bytes        bytea NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now()
);
`}

// OpenImages opens the pictures in database on the PostgreSQL server of serverURL,
// creating the database and the table when missing. Close releases it.
func OpenImages(ctx context.Context, serverURL, database string) (*Images, error) {
	pool, err := postgres.Open(ctx, serverURL, database)
	if err != nil {
		return nil, err
	}
	if _, err := imagesSchema.Ensure(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open the product images in %s: %w", database, err)
	}
	return &Images{pool: pool}, nil
}

// Close closes the connections.
func (s *Images) Close() { s.pool.Close() }

// Put stores pictures, in one transaction that returns once it is on disk. A picture
// stored before (same id) is left as it is.
func (s *Images) Put(ctx context.Context, pictures ...Picture) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// postgres.Open turns the flush wait off for read models; these rows have no
		// other copy.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return fmt.Errorf("store pictures: %w", err)
		}
		for _, p := range pictures {
			if _, err := tx.Exec(ctx, `INSERT INTO product_images (id, content_type, width, height, bytes)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
				p.ID, p.ContentType, p.Width, p.Height, p.Bytes); err != nil {
				return fmt.Errorf("store picture %s: %w", p.ID, err)
			}
		}
		return nil
	})
}

// Get returns the picture id, or an error wrapping service.ErrNotFound when there is
// none.
func (s *Images) Get(ctx context.Context, id ImageID) (Picture, error) {
	p := Picture{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT content_type, width, height, bytes FROM product_images WHERE id = $1`, id).
		Scan(&p.ContentType, &p.Width, &p.Height, &p.Bytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return Picture{}, fmt.Errorf("picture %s: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return Picture{}, fmt.Errorf("read picture %s: %w", id, err)
	}
	return p, nil
}
