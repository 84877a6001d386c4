package jepsen

import (
	"fmt"
	"strings"
)

// edgeKind is a set of dependency kinds; an edge between two transactions may stand for several.
type edgeKind uint8

const (
	edgeWW edgeKind = 1 << iota // write-write: the later version's writer depends on the earlier's
	edgeWR                      // write-read: the reader saw the writer's version
	edgeRW                      // read-write (anti-dependency): the reader did not see the writer's version
)

func (k edgeKind) String() string {
	var names []string
	for _, n := range []struct {
		k    edgeKind
		name string
	}{{edgeWW, "ww"}, {edgeWR, "wr"}, {edgeRW, "rw"}} {
		if k&n.k != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, "+")
}

type edge struct {
	to   int
	kind edgeKind
	key  int
}

// graph is a dependency graph over transaction indices. The zero value is empty and ready to use.
type graph map[int][]edge

func (g graph) add(from, to int, kind edgeKind, key int) {
	g[from] = append(g[from], edge{to: to, kind: kind, key: key})
}

// components returns the strongly connected components of more than one node of the subgraph of edges whose kind
// is in allowed (Tarjan's algorithm, iterative so that long chains cannot exhaust the stack).
func (g graph) components(allowed edgeKind) [][]int {
	t := tarjan{g: g, allowed: allowed, index: map[int]int{}, low: map[int]int{}, onStack: map[int]bool{}}
	for _, v := range sortedKeys(g) {
		if _, seen := t.index[v]; !seen {
			t.visit(v)
		}
	}
	return t.out
}

type tarjan struct {
	g       graph
	allowed edgeKind
	next    int
	index   map[int]int
	low     map[int]int
	onStack map[int]bool
	stack   []int
	out     [][]int
}

type frame struct {
	v, i int // node, and the next of its edges to look at
}

func (t *tarjan) open(v int) {
	t.index[v], t.low[v] = t.next, t.next
	t.next++
	t.stack = append(t.stack, v)
	t.onStack[v] = true
}

func (t *tarjan) visit(root int) {
	t.open(root)
	frames := []frame{{v: root}}
	for len(frames) > 0 {
		f := &frames[len(frames)-1]
		if f.i < len(t.g[f.v]) {
			e := t.g[f.v][f.i]
			f.i++
			if e.kind&t.allowed == 0 {
				continue
			}
			if _, seen := t.index[e.to]; !seen {
				t.open(e.to)
				frames = append(frames, frame{v: e.to})
			} else if t.onStack[e.to] {
				t.low[f.v] = min(t.low[f.v], t.index[e.to])
			}
			continue
		}
		v := f.v
		frames = frames[:len(frames)-1]
		if len(frames) > 0 {
			parent := frames[len(frames)-1].v
			t.low[parent] = min(t.low[parent], t.low[v])
		}
		if t.low[v] == t.index[v] {
			t.pop(v)
		}
	}
}

func (t *tarjan) pop(v int) {
	var scc []int
	for {
		w := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.onStack[w] = false
		scc = append(scc, w)
		if w == v {
			break
		}
	}
	if len(scc) > 1 {
		t.out = append(t.out, scc)
	}
}

// step is one edge of a cycle.
type step struct {
	from, to int
	kind     edgeKind
	key      int
}

type cycle []step

func (c cycle) txns() []int {
	out := make([]int, len(c))
	for i, s := range c {
		out[i] = s.from
	}
	return out
}

func (c cycle) String() string {
	var b strings.Builder
	for i, s := range c {
		if i == 0 {
			fmt.Fprintf(&b, "T%d", s.from)
		}
		fmt.Fprintf(&b, " -%s(k%d)-> T%d", s.kind, s.key, s.to)
	}
	return b.String()
}

// cycleThrough finds a cycle inside the component scc that uses only allowed edges and at least one edge of kind
// through: such an edge u->v plus a shortest path from v back to u.
func (g graph) cycleThrough(scc []int, allowed, through edgeKind) (cycle, bool) {
	in := make(map[int]bool, len(scc))
	for _, v := range scc {
		in[v] = true
	}
	for _, u := range scc {
		for _, e := range g[u] {
			if e.kind&through == 0 || !in[e.to] {
				continue
			}
			if path, ok := g.path(e.to, u, in, allowed); ok {
				return append(cycle{{from: u, to: e.to, kind: e.kind & allowed, key: e.key}}, path...), true
			}
		}
	}
	return nil, false
}

// path finds a shortest path from src to dst over allowed edges between nodes of in (breadth-first).
func (g graph) path(src, dst int, in map[int]bool, allowed edgeKind) (cycle, bool) {
	if src == dst {
		return nil, true
	}
	prev := map[int]step{src: {from: -1}}
	queue := []int{src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range g[u] {
			if e.kind&allowed == 0 || !in[e.to] {
				continue
			}
			if _, seen := prev[e.to]; seen {
				continue
			}
			prev[e.to] = step{from: u, to: e.to, kind: e.kind & allowed, key: e.key}
			if e.to == dst {
				return unwind(prev, src, dst), true
			}
			queue = append(queue, e.to)
		}
	}
	return nil, false
}

func unwind(prev map[int]step, src, dst int) cycle {
	var out cycle
	for v := dst; v != src; v = prev[v].from {
		out = append(out, prev[v])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
