package bench_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgxact/pgxact/bench/internal/workload"
)

// BenchmarkLookShapes prices the transaction-id look of the single workload's transaction, sent by hand as in
// BenchmarkSingleShapes, three ways:
//
//   - none: BEGIN and the UPDATE in one batch, then COMMIT;
//   - prepared: the look as pgxact sends it, a prepared SELECT pg_current_xact_id_if_assigned() at the end of the
//     batch;
//   - fastpath: the look as a FunctionCall message (the protocol's function-call cycle, no executor) after the
//     batch's Sync, written as soon as the batch is, its answer read after the batch's.
//
// It answers whether the function-call cycle would make the look cheaper for the server: by a few microseconds at
// most, within this host's noise (docs/benchmarks.md).
//
// Run it with, in bench/: go test -run '^$' -bench LookShapes -benchtime 40x
func BenchmarkLookShapes(b *testing.B) {
	ctx := context.Background()
	pool := onePool(b, workload.Single())
	var fn uint32
	if err := pool.QueryRow(ctx, "SELECT 'pg_current_xact_id_if_assigned'::regproc::oid").Scan(&fn); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	id := func() int64 { return 1 + r.Int64N(100_000) }
	wire := newHandWire(b, pool)
	ways := []shape{
		{"none", func() error { return wire.run(ctx, id(), false) }},
		{"prepared", func() error { return wire.run(ctx, id(), true) }},
		{"fastpath", func() error { return wire.runFastpath(ctx, id(), fn) }},
	}
	runShapes(b, pool, ways)
}

// runFastpath runs the single workload's transaction with the look as a function call of fn.
func (w *handWire) runFastpath(ctx context.Context, id int64, fn uint32) error {
	pc, release, err := acquire(ctx, w.pool)
	if err != nil {
		return err
	}
	defer release()
	mrr := pc.ExecBatch(ctx, w.statements(id))
	// pgconn has written the batch and reads nothing until asked: the call goes out behind it.
	fe := pc.Frontend()
	fe.Send(&pgproto3.FunctionCall{Function: fn, ResultFormatCode: 1})
	if err := fe.Flush(); err != nil {
		return err
	}
	_, batchErr := mrr.ReadAll()
	// The call's answer is read whatever the batch's was, so that the connection goes back to the pool in step.
	if err := readCall(fe); err != nil || batchErr != nil {
		return errors.Join(batchErr, err)
	}
	_, err = pc.ExecPrepared(ctx, w.done, nil, nil, nil).Close()
	return err
}

// readCall reads a function call's answer, up to its ReadyForQuery: an eight-byte transaction id.
func readCall(fe *pgproto3.Frontend) error {
	var xid []byte
	var failed error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch msg := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			xid = append(xid[:0], msg.Result...)
		case *pgproto3.ErrorResponse:
			failed = errors.New(msg.Message) // ReadyForQuery follows
		case *pgproto3.ReadyForQuery:
			if failed == nil && len(xid) != 8 {
				failed = fmt.Errorf("the look answered %x, not a transaction id", xid)
			}
			return failed
		}
	}
}
