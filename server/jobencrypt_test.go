package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/server"
)

// gatedStorage holds, once armed, the reads of the next result it opens
// after its first `after` bytes until gate is closed.
type gatedStorage struct {
	storage.Storage
	armed atomic.Bool
	after int64
	gate  chan struct{}
}

func (g *gatedStorage) Open(ctx context.Context, key string) (storage.Object, error) {
	o, err := g.Storage.Open(ctx, key)
	if err != nil || !g.armed.Swap(false) {
		return o, err
	}
	return &gatedObject{Object: o, g: g}, nil
}

type gatedObject struct {
	storage.Object
	g *gatedStorage
	n int64
}

func (o *gatedObject) Read(p []byte) (int, error) {
	if o.n >= o.g.after {
		<-o.g.gate
	} else if rest := o.g.after - o.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := o.Object.Read(p)
	o.n += int64(n)
	return n, err
}

// A password-protected download is encrypted as it is sent: with the
// stored result's reads held after its first 128 KiB, the response's
// headers (Content-Length: the encrypted size, known from the result's)
// and the compound file's first bytes have already arrived; released,
// the rest follows and the workbook decrypts to the plain one's rows.
func TestJobDownloadEncryptedStreams(t *testing.T) {
	dir := t.TempDir()
	yaml := `
connections:
  main: {url: "sqlite:items.db"}
datasets:
  sealed:
    sql: SELECT id, name FROM items ORDER BY id
    columns: [{name: id, type: int}, {name: name, type: string}]
    encryption: optional
`
	cfg, src := itemsSource(t, dir, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) INSERT INTO items SELECT i, '이름 ' || i || ' ' || hex(randomblob(8)) FROM n`, yaml)
	var gs *gatedStorage
	m := startJobsOn(t, dir, cfg, src, nil, func(st storage.Storage) storage.Storage {
		gs = &gatedStorage{Storage: st, after: 128 << 10, gate: make(chan struct{})}
		return gs
	}, nil)
	srv := (&fixture{cfg: cfg, src: src}).start(t, func(c *server.Config) { c.Jobs = m })
	c := client(t)

	resp, body := do(t, c, "POST", srv.URL+"/v1/datasets/sealed/jobs", map[string]any{"format": "xlsx"})
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %s %s", resp.Status, body)
	}
	var j jobs.Job
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, c, srv.URL, j.ID, nil)
	u := srv.URL + "/v1/jobs/" + j.ID + "/download"
	_, plain := do(t, c, "GET", u, nil)
	if int64(len(plain)) != j.Bytes || j.Bytes < 4*gs.after {
		t.Fatalf("plain result: %d bytes, job says %d", len(plain), j.Bytes)
	}

	gs.armed.Store(true)
	release := sync.OnceFunc(func() { close(gs.gate) })
	var late atomic.Bool // the gate opened by the timer: nothing was streamed
	timer := time.AfterFunc(30*time.Second, func() { late.Store(true); release() })
	defer timer.Stop()
	req, err := http.NewRequest("POST", u, strings.NewReader(`{"password": "streamed-pw-42"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	if late.Load() {
		t.Fatal("the response started only when the stored result had been read to its end")
	}
	release()
	if want := encrypt.EncryptedSize(j.Bytes); resp.StatusCode != 200 || resp.ContentLength != want {
		t.Fatalf("%s, Content-Length %d, want %d", resp.Status, resp.ContentLength, want)
	}
	if !bytes.HasPrefix(head, []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}) {
		t.Fatalf("first bytes % x", head[:8])
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	enc := append(head, rest...)
	if int64(len(enc)) != resp.ContentLength {
		t.Fatalf("%d bytes received, Content-Length %d", len(enc), resp.ContentLength)
	}
	got := decryptXLSX(t, enc, "streamed-pw-42")
	if want := readTable(t, exportd.FormatXLSX, plain); len(got) != 30001 || !reflect.DeepEqual(got, want) {
		t.Errorf("decrypted workbook: %d rows, differs from the plain one's %d", len(got), len(want))
	}
}
