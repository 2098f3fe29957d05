package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretNew serializes ferretdb.New, which is not safe to call concurrently (tests run
// several stores in one process).
var ferretNew sync.Mutex

// startFerretDB runs an embedded FerretDB with its SQLite backend in dir on a loopback port
// until ctx is done, and returns its MongoDB URI. Telemetry is off (the embedded package
// turns it off and locks it). done is closed when it has stopped.
func startFerretDB(ctx context.Context, dir string, logger *slog.Logger) (uri string, done <-chan struct{}, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("embedded FerretDB data dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return "", nil, fmt.Errorf("embedded FerretDB data dir: %w", err)
	}
	ferretNew.Lock() // ferretdb.New writes a package-level variable of FerretDB's
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		// FerretDB logs every connection at info level and every failed command (such as
		// the driver's endSessions, which it lacks) as a warning; only its errors matter.
		Logger: slog.New(quietHandler{logger.Handler()}),
	})
	ferretNew.Unlock()
	if err != nil {
		return "", nil, fmt.Errorf("start embedded FerretDB in %s: %w", abs, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = f.Run(ctx)
	}()
	return f.MongoDBURI(), stopped, nil
}

// quietHandler passes on only errors.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
