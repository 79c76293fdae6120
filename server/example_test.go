package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/sqlite"
)

// A server built from a Config: the datasets file's datasets, one source
// per connection. Its handler streams GET /v1/datasets/{name}/export.csv.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "exportd-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", filepath.Join(dir, "shop.db"))
	db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, branch TEXT, total REAL)`)
	db.Exec(`INSERT INTO orders VALUES (1, '서울', 12000.5), (2, '부산', 8000), (3, '서울', 3000)`)
	db.Close()

	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(`
connections:
  shop: {url: "sqlite:shop.db"}
datasets:
  totals:
    title: 지점별 매출
    connection: shop
    sql: SELECT branch, sum(total) AS total FROM orders WHERE total >= :min GROUP BY branch ORDER BY branch
    params:
      - {name: min, type: float, default: 0}
    columns:
      - {name: branch, header: 지점, type: string}
      - {name: total, header: 매출, type: float}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "shop.db"), exportd.SourceOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	s, err := server.New(server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"shop": src},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/v1/datasets/totals/export.csv?min=5000")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Printf("%s", body[3:]) // after the UTF-8 byte-order mark
	// Output:
	// 200 OK text/csv; charset=utf-8
	// 지점,매출
	// 부산,8000
	// 서울,12000.5
}
