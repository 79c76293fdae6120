package jobs_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/sqlite"
)

// A background job on one node: the queue in SQLite, the results in a
// directory. The job runs the dataset's export into storage; its result
// is opened by its owner once it has succeeded.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "exportd-jobs-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", filepath.Join(dir, "shop.db"))
	db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, branch TEXT)`)
	db.Exec(`INSERT INTO orders VALUES (1, '서울'), (2, '부산')`)
	db.Close()
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(`
connections:
  shop: {url: "sqlite:shop.db"}
datasets:
  orders:
    connection: shop
    sql: SELECT id, branch FROM orders ORDER BY id
    columns:
      - {name: id, type: int}
      - {name: branch, header: 지점, type: string}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, _ := sqlite.Open(ctx, filepath.Join(dir, "shop.db"), exportd.SourceOptions{})
	defer src.Close()
	q, _ := jobs.OpenQueue(ctx, "sqlite:"+filepath.Join(dir, "jobs.db"))
	defer q.Close()
	st, _ := storage.Open(ctx, "file://"+filepath.Join(dir, "results"))
	defer st.Close()
	m, err := jobs.New(jobs.Config{Datasets: cfg, Sources: map[string]exportd.Source{"shop": src}, Queue: q, Storage: st,
		Links: mustKeys([]byte("example-secret-0123456789")), PollInterval: 50 * time.Millisecond, NodeID: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer m.Stop(ctx)

	job, _, err := m.Submit(ctx, jobs.Request{Owner: "kim", Dataset: "orders", Format: exportd.FormatCSV})
	if err != nil {
		fmt.Println(err)
		return
	}
	for job.State != jobs.StateSucceeded {
		time.Sleep(50 * time.Millisecond)
		if job, err = m.Get(ctx, "kim", job.ID); err != nil {
			fmt.Println(err)
			return
		}
	}
	res, err := m.Open(ctx, "kim", job.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Close()
	b, _ := io.ReadAll(res)
	fmt.Println(job.State, job.Rows, job.FileName)
	fmt.Printf("%s", b[3:]) // after the byte-order mark
	// Output:
	// succeeded 2 orders.csv
	// id,지점
	// 1,서울
	// 2,부산
}
