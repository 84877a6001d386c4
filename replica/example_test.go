package replica_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

// A web handler that carries read-your-writes across requests in a cookie: after a user's write, that user's reads
// go to a replica only once it has replayed the write.
func ExampleRouter_SessionFrom() {
	ctx := context.Background()
	primary, _ := pgxpool.New(ctx, "postgres://app@127.0.0.1:5432/shop")
	standby, _ := pgxpool.New(ctx, "postgres://app@127.0.0.1:5433/shop?connect_timeout=2")
	router, _ := replica.New(primary, []*pgxpool.Pool{standby})

	countOrders := tx.QueryOne("SELECT count(*) FROM orders", pgx.RowTo[int])
	placeOrder := tx.Exec("INSERT INTO orders DEFAULT VALUES")
	read := []tx.Option{tx.ReadOnly()} // REPEATABLE READ on a standby, which refuses tx.Run's default SERIALIZABLE

	http.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		var token string
		if c, err := r.Cookie("ryw"); err == nil {
			token = c.Value
		}
		s, err := router.SessionFrom(token)
		if err != nil {
			s = router.Session() // a mangled cookie: start afresh
		}
		if r.Method == http.MethodPost {
			if _, err := tx.Run(r.Context(), s, placeOrder); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "ryw", Value: s.Token(), HttpOnly: true})
		}
		n, err := tx.Run(r.Context(), s, countOrders, read...)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d orders\n", n)
	})
}
