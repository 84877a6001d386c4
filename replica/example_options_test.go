package replica_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/replica"
)

// Standbys next to the primary usually replay a commit within a few milliseconds. Waiting up to 20ms for one keeps
// a session's reads after its writes off the primary, without holding a replica connection for long. New checks the
// options without connecting; a negative wait is refused rather than read as a default.
func ExampleWithMaxWait() {
	ctx := context.Background()
	primary, _ := pgxpool.New(ctx, "postgres://app@db-primary:5432/shop") // pgxpool connects lazily
	defer primary.Close()
	standby, _ := pgxpool.New(ctx, "postgres://app@db-standby:5432/shop?connect_timeout=2")
	defer standby.Close()

	_, err := replica.New(primary, []*pgxpool.Pool{standby}, replica.WithMaxWait(20*time.Millisecond))
	fmt.Println(err)
	_, err = replica.New(primary, []*pgxpool.Pool{standby}, replica.WithMaxWait(-20*time.Millisecond))
	fmt.Println(errors.Is(err, replica.ErrInvalid), err)
	// Output:
	// <nil>
	// true replica: invalid configuration: negative MaxWait -20ms
}

// A standby that restarts for maintenance is back within seconds: looking at it again after one second, rather
// than after DefaultCooldown, returns its share of the reads sooner, at the cost of a failed connection attempt a
// second while it is down. Reads meanwhile go to the other replicas, or the primary.
func ExampleWithCooldown() {
	ctx := context.Background()
	primary, _ := pgxpool.New(ctx, "postgres://app@db-primary:5432/shop") // pgxpool connects lazily
	defer primary.Close()
	standby, _ := pgxpool.New(ctx, "postgres://app@db-standby:5432/shop?connect_timeout=2")
	defer standby.Close()

	_, err := replica.New(primary, []*pgxpool.Pool{standby}, replica.WithCooldown(time.Second))
	fmt.Println(err)
	// Output: <nil>
}
