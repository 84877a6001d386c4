package jepsen_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/tx"
)

// A pipeline is a small program of tx combinators decoded from fuzz bytes. It can be built into a tx.Tx and also
// evaluated by a plain-Go model of what the transaction must do, so the two can be compared.
type pipeline struct {
	kind pipeKind
	n    int // value of Pure and Insert, increment of Map, id of Hook
	kids []*pipeline
}

type pipeKind int

const (
	pPure    pipeKind = iota // yields n
	pFail                    // fails in Go
	pSQLFail                 // fails on the server (division by zero), leaving the transaction aborted
	pInsert                  // inserts n into items, yields n
	pCount                   // yields the number of rows in items
	pHook                    // registers an AfterCommit hook, yields 0
	pMap                     // kid + n
	pThen                    // kid 0, then kid 1
	pBind                    // kid 0, then kid 1 if its value is even, else kid 2
	pNested                  // kid under a savepoint
	pRecover                 // kid under a savepoint, falling back to kid 1
	pAll                     // kids in order, summed
	numKinds
	numLeaves = pHook + 1
)

var kindNames = [...]string{"Pure", "Fail", "SQLFail", "Insert", "Count", "Hook", "Map", "Then", "Bind", "Nested", "Recover", "All"}

// decoder turns bytes into a pipeline; exhausted input reads as zeros, so every byte string decodes.
type decoder struct {
	data  []byte
	nodes int
	hooks int
}

const (
	maxPipeDepth = 5
	maxPipeNodes = 24
)

func (d *decoder) next() int {
	if len(d.data) == 0 {
		return 0
	}
	b := d.data[0]
	d.data = d.data[1:]
	return int(b)
}

func decodePipeline(data []byte) *pipeline {
	d := &decoder{data: data}
	return d.decode(0)
}

func (d *decoder) decode(depth int) *pipeline {
	d.nodes++
	k := pipeKind(d.next() % int(numKinds))
	if depth >= maxPipeDepth || d.nodes >= maxPipeNodes {
		k %= numLeaves
	}
	p := &pipeline{kind: k}
	switch k {
	case pPure, pMap:
		p.n = d.next() % 10
	case pInsert:
		p.n = d.next()
	case pHook:
		d.hooks++
		p.n = d.hooks
	}
	for range arity(k, d) {
		p.kids = append(p.kids, d.decode(depth+1))
	}
	return p
}

func arity(k pipeKind, d *decoder) int {
	switch k {
	case pMap, pNested:
		return 1
	case pThen, pRecover:
		return 2
	case pBind:
		return 3
	case pAll:
		return 1 + d.next()%3
	default:
		return 0
	}
}

func (p *pipeline) String() string {
	if len(p.kids) == 0 {
		if p.kind == pPure || p.kind == pInsert || p.kind == pHook {
			return fmt.Sprintf("%s(%d)", kindNames[p.kind], p.n)
		}
		return kindNames[p.kind]
	}
	var kids []string
	for _, k := range p.kids {
		kids = append(kids, k.String())
	}
	if p.kind == pMap {
		kids = append(kids, fmt.Sprintf("+%d", p.n))
	}
	return kindNames[p.kind] + "(" + strings.Join(kids, ", ") + ")"
}

var errPipeline = errors.New("pipeline: Fail")

// build turns p into a transaction; hooks it registers append their ids to *ran.
func (p *pipeline) build(ran *[]int) tx.Tx[int] {
	k := func(i int) tx.Tx[int] { return p.kids[i].build(ran) }
	tagTo := func(v int) func(pgconn.CommandTag) int { return func(pgconn.CommandTag) int { return v } }
	switch p.kind {
	case pPure:
		return tx.Pure(p.n)
	case pFail:
		return tx.Fail[int](errPipeline)
	case pSQLFail:
		return tx.Map(tx.Exec("SELECT 1/0"), tagTo(0))
	case pInsert:
		return tx.Map(tx.Exec("INSERT INTO items (v) VALUES ($1)", p.n), tagTo(p.n))
	case pCount:
		return tx.QueryOne("SELECT count(*)::int FROM items", pgx.RowTo[int])
	case pHook:
		id := p.n
		return tx.Then(tx.AfterCommit(func(context.Context) { *ran = append(*ran, id) }), tx.Pure(0))
	case pMap:
		return tx.Map(k(0), func(v int) int { return v + p.n })
	case pThen:
		return tx.Then(k(0), k(1))
	case pBind:
		even, odd := k(1), k(2)
		return tx.Bind(k(0), func(v int) tx.Tx[int] {
			if v%2 == 0 {
				return even
			}
			return odd
		})
	case pNested:
		return tx.Nested(k(0))
	case pRecover:
		fallback := k(1)
		return tx.Recover(k(0), func(error) tx.Tx[int] { return fallback })
	default: // pAll
		var ts []tx.Tx[int]
		for i := range p.kids {
			ts = append(ts, k(i))
		}
		return tx.Map(tx.All(ts), func(vs []int) int {
			sum := 0
			for _, v := range vs {
				sum += v
			}
			return sum
		})
	}
}

// model is the reference semantics: a list of committed values and of registered hooks, with savepoints as
// truncation marks.
type model struct {
	items []int
	hooks []int
}

// eval runs p against the model and reports its value and whether it succeeded.
func (m *model) eval(p *pipeline) (int, bool) {
	switch p.kind {
	case pPure:
		return p.n, true
	case pFail, pSQLFail:
		return 0, false
	case pInsert:
		m.items = append(m.items, p.n)
		return p.n, true
	case pCount:
		return len(m.items), true
	case pHook:
		m.hooks = append(m.hooks, p.n)
		return 0, true
	case pMap:
		v, ok := m.eval(p.kids[0])
		return v + p.n, ok
	case pThen:
		if _, ok := m.eval(p.kids[0]); !ok {
			return 0, false
		}
		return m.eval(p.kids[1])
	case pBind:
		v, ok := m.eval(p.kids[0])
		if !ok {
			return 0, false
		}
		if v%2 == 0 {
			return m.eval(p.kids[1])
		}
		return m.eval(p.kids[2])
	case pNested:
		return m.savepoint(p.kids[0])
	case pRecover:
		if v, ok := m.savepoint(p.kids[0]); ok {
			return v, true
		}
		return m.eval(p.kids[1])
	default: // pAll
		sum := 0
		for _, k := range p.kids {
			v, ok := m.eval(k)
			if !ok {
				return 0, false
			}
			sum += v
		}
		return sum, true
	}
}

func (m *model) savepoint(p *pipeline) (int, bool) {
	items, hooks := len(m.items), len(m.hooks)
	v, ok := m.eval(p)
	if !ok {
		m.items, m.hooks = m.items[:items], m.hooks[:hooks]
	}
	return v, ok
}
