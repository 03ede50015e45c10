// Command porcupine-bench times Porcupine (github.com/anishathalye/porcupine)
// on Porcupine's own test histories, in process, so that it can be set side
// by side with our Rust checker (examples/porcupine.rs of this crate).
//
//	porcupine-bench [-runs N] [-events] [-timedout-read end|line] [-per-history] <porcupine-dir>
//
// Run it through scripts/porcupine-bench.sh, which builds it offline against
// the given Porcupine checkout (a `replace` in a throwaway go.mod).
//
// The expected verdicts come from <porcupine-dir>/porcupine_test.go
// (`checkJepsen(t, N, bool)` and `checkKv(t, "name", bool, ...)`). The
// histories are parsed here, by our own parser, with the semantics of
// Porcupine's tests and of our Rust example:
//
//   - etcd (test_data/jepsen/etcd_NNN.log): one register, absent at first,
//     with read, write and compare-and-set. Time is the line's index. An
//     operation never answered (`:info ... :timed-out`, or nothing at all)
//     has an unknown outcome and returns at the end of time. A read that
//     failed with `:timed-out` has an unknown outcome too; by default it
//     also returns at the end of time, as in the Rust example
//     (`-timedout-read line` closes it at its own line instead, as
//     Porcupine's test parser does; a read changes nothing, so the verdict
//     is the same either way).
//   - kv (test_data/kv/NAME.txt): get, put and append on string keys, an
//     absent key reading as "", partitioned by key.
//
// Parsing is not timed. Timed: the whole etcd set checked one history after
// another (one time for the set), and each kv file on its own; each time is
// the median of -runs runs (at least 5). Porcupine runs with no timeout.
//
// Output: `# ...` lines are for people; one line per set is for machines:
//
//	set etcd histories=102 agree=102 median_ms=123.456
//	set kv:c01-ok ops=58 agree=1 median_ms=0.123
//
// Exit status: 0 when every verdict agrees with Porcupine's expected one, 1
// when one differs (or is Unknown), 2 on bad usage or unreadable input.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// endOfTime is the return time of an operation whose answer never came.
const endOfTime = int64(math.MaxInt64)

// ---------------------------------------------------------------------------
// Expected verdicts, from porcupine_test.go.

var (
	jepsenCall = regexp.MustCompile(`^\s*checkJepsen\(\s*t\s*,\s*(\d+)\s*,\s*(true|false)\s*\)`)
	kvCall     = regexp.MustCompile(`^\s*checkKv\(\s*t\s*,\s*"([^"]+)"\s*,\s*(true|false)\b`)
)

type expectations struct {
	etcd    map[int]bool
	kv      map[string]bool
	kvOrder []string // first-seen order, as listed in the test file
}

func readExpectations(path string) (expectations, error) {
	exp := expectations{etcd: map[int]bool{}, kv: map[string]bool{}}
	f, err := os.Open(path)
	if err != nil {
		return exp, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := jepsenCall.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			exp.etcd[n] = m[2] == "true"
		} else if m := kvCall.FindStringSubmatch(line); m != nil {
			want := m[2] == "true"
			if prev, seen := exp.kv[m[1]]; seen {
				if prev != want {
					return exp, fmt.Errorf("%s: checkKv %q listed as both true and false", path, m[1])
				}
				continue // the same log again, e.g. with the unpartitioned model
			}
			exp.kv[m[1]] = want
			exp.kvOrder = append(exp.kvOrder, m[1])
		}
	}
	return exp, sc.Err()
}

// ---------------------------------------------------------------------------
// History building shared by both parsers: one operation open per process.

type builder struct {
	ops  []porcupine.Operation
	open map[int]int // process -> index in ops of its unanswered call
	// Oddities worth reporting (none are expected in Porcupine's data).
	reinvoked int // a call from a process whose previous call is still open
	orphans   int // an answer from a process with nothing open
}

func newBuilder() *builder { return &builder{open: map[int]int{}} }

func (b *builder) call(at int64, proc int, input interface{}, unanswered interface{}) {
	if _, busy := b.open[proc]; busy {
		b.reinvoked++ // the older call keeps its end-of-time return
	}
	b.open[proc] = len(b.ops)
	b.ops = append(b.ops, porcupine.Operation{
		ClientId: proc, Input: input, Call: at, Output: unanswered, Return: endOfTime,
	})
}

// answer closes proc's open call at `at` with `output`.
func (b *builder) answer(at int64, proc int, output interface{}) {
	i, ok := b.open[proc]
	if !ok {
		b.orphans++
		return
	}
	delete(b.open, proc)
	b.ops[i].Output = output
	b.ops[i].Return = at
}

// forget closes proc's open call with no answer: its outcome stays unknown
// and it keeps returning at the end of time, but the process is free again.
func (b *builder) forget(proc int) {
	if _, ok := b.open[proc]; !ok {
		b.orphans++
		return
	}
	delete(b.open, proc)
}

func (b *builder) note(name string) string {
	if b.reinvoked == 0 && b.orphans == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %d call(s) over an open call, %d answer(s) with no open call", name, b.reinvoked, b.orphans)
}

// ---------------------------------------------------------------------------
// The etcd register.

type regKind uint8

const (
	regRead regKind = iota
	regWrite
	regCas
)

// regIn is an etcd request: read, write(arg), or cas(arg -> to).
type regIn struct {
	kind    regKind
	arg, to int64
}

// regOut is an etcd answer. unknown: no answer came (any is allowed).
type regOut struct {
	unknown bool
	present bool  // read: the register held a value
	value   int64 // read: that value
	swapped bool  // cas: it took effect
}

// absent is the register's state before any write (the logs' values are
// small non-negative numbers).
const absent = int64(math.MinInt64)

var registerModel = porcupine.Model{
	Init: func() interface{} { return absent },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		cur := state.(int64)
		in := input.(regIn)
		out := output.(regOut)
		switch in.kind {
		case regRead:
			if out.unknown {
				return true, cur
			}
			if !out.present {
				return cur == absent, cur
			}
			return cur == out.value, cur
		case regWrite:
			return true, in.arg
		default: // regCas
			hit := cur == in.arg
			next := cur
			if hit {
				next = in.to
			}
			return out.unknown || hit == out.swapped, next
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regIn), output.(regOut)
		return fmt.Sprintf("%v -> %+v", in, out)
	},
}

// parseEtcd reads a Jepsen etcd log. timedOutAtLine: close a read that
// failed with :timed-out at that line (else at the end of time).
func parseEtcd(path string, timedOutAtLine bool) ([]porcupine.Operation, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	b := newBuilder()
	number := func(s string) (int64, bool) {
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil && v >= 0
	}
	for idx, line := range strings.Split(string(data), "\n") {
		// INFO  jepsen.util - <process> <type> <f> <value...>
		w := strings.Fields(line)
		if len(w) < 7 || w[0] != "INFO" || w[1] != "jepsen.util" || w[2] != "-" {
			continue
		}
		proc, err := strconv.Atoi(w[3])
		if err != nil || proc < 0 {
			continue
		}
		at := int64(idx)
		kind, f, rest := w[4], w[5], w[6:]
		pair := func() (int64, int64, bool) { // "[a b]"
			if len(rest) != 2 || !strings.HasPrefix(rest[0], "[") || !strings.HasSuffix(rest[1], "]") {
				return 0, 0, false
			}
			a, okA := number(strings.TrimPrefix(rest[0], "["))
			c, okC := number(strings.TrimSuffix(rest[1], "]"))
			return a, c, okA && okC
		}
		single := len(rest) == 1
		unknown := regOut{unknown: true}
		switch {
		case kind == ":invoke" && f == ":read" && single && rest[0] == "nil":
			b.call(at, proc, regIn{kind: regRead}, unknown)
		case kind == ":invoke" && f == ":write" && single:
			if v, ok := number(rest[0]); ok {
				b.call(at, proc, regIn{kind: regWrite, arg: v}, unknown)
			}
		case kind == ":invoke" && f == ":cas":
			if from, to, ok := pair(); ok {
				b.call(at, proc, regIn{kind: regCas, arg: from, to: to}, unknown)
			}
		case kind == ":ok" && f == ":read" && single:
			if rest[0] == "nil" {
				b.answer(at, proc, regOut{})
			} else if v, ok := number(rest[0]); ok {
				b.answer(at, proc, regOut{present: true, value: v})
			}
		case kind == ":ok" && f == ":write" && single:
			if _, ok := number(rest[0]); ok {
				b.answer(at, proc, regOut{})
			}
		case (kind == ":ok" || kind == ":fail") && f == ":cas":
			if _, _, ok := pair(); ok {
				b.answer(at, proc, regOut{swapped: kind == ":ok"})
			}
		case kind == ":fail" && f == ":read" && single && rest[0] == ":timed-out":
			if timedOutAtLine {
				b.answer(at, proc, unknown)
			} else {
				b.forget(proc)
			}
			// Anything else (`:info :write :timed-out`, `:info :cas
			// :timed-out`) leaves the call open: unknown, end of time.
		}
	}
	return b.ops, b.note(filepath.Base(path)), nil
}

// ---------------------------------------------------------------------------
// The key-value store, one key per partition.

type kvKind uint8

const (
	kvGet kvKind = iota
	kvPut
	kvAppend
)

type kvIn struct {
	kind  kvKind
	key   string
	value string
}

// kvOut is a kv answer: a get's value ("" for an absent key); puts and
// appends answer nothing. unknown: no answer came.
type kvOut struct {
	unknown bool
	value   string
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvIn).key
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		parts := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			parts[i] = byKey[k]
		}
		return parts
	},
	PartitionEvent: func(history []porcupine.Event) [][]porcupine.Event {
		keyOf := map[int]string{} // call id -> key
		byKey := map[string][]porcupine.Event{}
		var keys []string
		for _, ev := range history {
			var k string
			if ev.Kind == porcupine.CallEvent {
				k = ev.Value.(kvIn).key
				keyOf[ev.Id] = k
			} else {
				k = keyOf[ev.Id]
			}
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], ev)
		}
		sort.Strings(keys)
		parts := make([][]porcupine.Event, len(keys))
		for i, k := range keys {
			parts[i] = byKey[k]
		}
		return parts
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		cur := state.(string)
		in := input.(kvIn)
		out := output.(kvOut)
		switch in.kind {
		case kvGet:
			return out.unknown || out.value == cur, cur
		case kvPut:
			return true, in.value
		default: // kvAppend
			return true, cur + in.value
		}
	},
	Hash: func(state interface{}) uint64 {
		// FNV-1a, 64 bits, without allocating.
		s := state.(string)
		h := uint64(14695981039346656037)
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		return h
	},
	DescribeOperation: func(input, output interface{}) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
}

// parseKv reads a kv log: one EDN-ish map per line,
// {:process P, :type T, :f F, :key "K", :value "V"|nil}.
func parseKv(path string) ([]porcupine.Operation, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	b := newBuilder()
	for idx, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
			continue
		}
		fields := map[string]string{}
		for _, part := range strings.Split(line[1:len(line)-1], ", :") {
			part = strings.TrimPrefix(part, ":")
			name, val, ok := strings.Cut(part, " ")
			if ok {
				fields[name] = val
			}
		}
		proc, err := strconv.Atoi(fields["process"])
		if err != nil {
			continue
		}
		quoted := func(s string) (string, bool) {
			if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
				return s[1 : len(s)-1], true
			}
			return "", false
		}
		key, ok := quoted(fields["key"])
		if !ok {
			continue
		}
		val, _ := quoted(fields["value"]) // nil (or missing): ""
		at := int64(idx)
		unknown := kvOut{unknown: true}
		switch fields["type"] + " " + fields["f"] {
		case ":invoke :get":
			b.call(at, proc, kvIn{kind: kvGet, key: key}, unknown)
		case ":invoke :put":
			b.call(at, proc, kvIn{kind: kvPut, key: key, value: val}, unknown)
		case ":invoke :append":
			b.call(at, proc, kvIn{kind: kvAppend, key: key, value: val}, unknown)
		case ":ok :get":
			// an absent key reads as "" (nil, never seen in the data, too)
			b.answer(at, proc, kvOut{value: val})
		case ":ok :put", ":ok :append":
			b.answer(at, proc, kvOut{})
		}
	}
	return b.ops, b.note(filepath.Base(path)), nil
}

// ---------------------------------------------------------------------------
// Checking and timing.

// toEvents turns operations into Porcupine events in time order (a call
// before a return at the same instant), for -events.
func toEvents(ops []porcupine.Operation) []porcupine.Event {
	type point struct {
		at   int64
		ret  bool
		id   int
		proc int
		val  interface{}
	}
	pts := make([]point, 0, 2*len(ops))
	for i, op := range ops {
		pts = append(pts, point{op.Call, false, i, op.ClientId, op.Input})
		pts = append(pts, point{op.Return, true, i, op.ClientId, op.Output})
	}
	sort.SliceStable(pts, func(a, b int) bool {
		if pts[a].at != pts[b].at {
			return pts[a].at < pts[b].at
		}
		return !pts[a].ret && pts[b].ret
	})
	evs := make([]porcupine.Event, len(pts))
	for i, p := range pts {
		kind := porcupine.CallEvent
		if p.ret {
			kind = porcupine.ReturnEvent
		}
		evs[i] = porcupine.Event{ClientId: p.proc, Kind: kind, Value: p.val, Id: p.id}
	}
	return evs
}

// history is one parsed log, in the form the chosen API takes.
type history struct {
	name   string
	ops    []porcupine.Operation
	events []porcupine.Event // with -events
	want   bool
}

func check(model porcupine.Model, h *history, useEvents bool) porcupine.CheckResult {
	if useEvents {
		return porcupine.CheckEventsTimeout(model, h.events, 0) // 0: no timeout
	}
	return porcupine.CheckOperationsTimeout(model, h.ops, 0) // 0: no timeout
}

// timeRuns runs f `runs` times (a GC before each, outside the clock) and
// returns the median and all times in ms, and f's last results.
func timeRuns(runs int, f func() []porcupine.CheckResult) (float64, []float64, []porcupine.CheckResult) {
	var times []float64
	var last []porcupine.CheckResult
	for i := 0; i < runs; i++ {
		runtime.GC()
		start := time.Now()
		last = f()
		times = append(times, float64(time.Since(start).Nanoseconds())/1e6)
	}
	sorted := append([]float64(nil), times...)
	sort.Float64s(sorted)
	mid := len(sorted) / 2
	median := sorted[mid]
	if len(sorted)%2 == 0 {
		median = (sorted[mid-1] + sorted[mid]) / 2
	}
	return median, times, last
}

func fmtTimes(ts []float64) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = strconv.FormatFloat(t, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "porcupine-bench: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	runs := flag.Int("runs", 5, "timed runs per set (at least 5); the median is reported")
	useEvents := flag.Bool("events", false, "check through CheckEvents (as Porcupine's tests do) instead of CheckOperations")
	perHistory := flag.Bool("per-history", false, "after the timed runs, time each etcd history once and list the slowest ten (# lines)")
	timedOut := flag.String("timedout-read", "end", "where a read that failed with :timed-out returns: end (of time, as our Rust example) or line (its own line, as Porcupine's tests)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: porcupine-bench [flags] <porcupine-dir>\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *runs < 5 {
		fail("-runs must be at least 5 (got %d)", *runs)
	}
	if *timedOut != "end" && *timedOut != "line" {
		fail("-timedout-read must be end or line (got %q)", *timedOut)
	}
	dir := flag.Arg(0)

	fmt.Printf("# GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))
	api := "CheckOperationsTimeout(model, ops, 0)"
	if *useEvents {
		api = "CheckEventsTimeout(model, events, 0)"
	}
	fmt.Printf("# porcupine dir %s; %s, no timeout; median of %d runs; timed-out reads return at: %s\n", dir, api, *runs, *timedOut)

	exp, err := readExpectations(filepath.Join(dir, "porcupine_test.go"))
	if err != nil {
		fail("%v", err)
	}
	if len(exp.etcd) == 0 || len(exp.kv) == 0 {
		fail("no checkJepsen/checkKv lines found in %s", filepath.Join(dir, "porcupine_test.go"))
	}

	// Parse everything first.
	var notes []string
	nums := make([]int, 0, len(exp.etcd))
	for n := range exp.etcd {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	etcd := make([]*history, 0, len(nums))
	etcdOps := 0
	for _, n := range nums {
		path := filepath.Join(dir, "test_data", "jepsen", fmt.Sprintf("etcd_%03d.log", n))
		ops, note, err := parseEtcd(path, *timedOut == "line")
		if err != nil {
			fail("%v", err)
		}
		if note != "" {
			notes = append(notes, note)
		}
		h := &history{name: fmt.Sprintf("etcd_%03d", n), ops: ops, want: exp.etcd[n]}
		if *useEvents {
			h.events = toEvents(ops)
		}
		etcdOps += len(ops)
		etcd = append(etcd, h)
	}
	kv := make([]*history, 0, len(exp.kvOrder))
	for _, name := range exp.kvOrder {
		ops, note, err := parseKv(filepath.Join(dir, "test_data", "kv", name+".txt"))
		if err != nil {
			fail("%v", err)
		}
		if note != "" {
			notes = append(notes, note)
		}
		h := &history{name: name, ops: ops, want: exp.kv[name]}
		if *useEvents {
			h.events = toEvents(ops)
		}
		kv = append(kv, h)
	}
	for _, n := range notes {
		fmt.Printf("# parse note: %s\n", n)
	}

	differ := 0
	judge := func(h *history, got porcupine.CheckResult) bool {
		if got != porcupine.Unknown && (got == porcupine.Ok) == h.want {
			return true
		}
		differ++
		fmt.Printf("# DIFFERS %s: Porcupine says %s, its test expects linearizable=%t\n", h.name, got, h.want)
		return false
	}

	// etcd: the whole set, one history after another.
	median, times, results := timeRuns(*runs, func() []porcupine.CheckResult {
		out := make([]porcupine.CheckResult, len(etcd))
		for i, h := range etcd {
			out[i] = check(registerModel, h, *useEvents)
		}
		return out
	})
	agree, linearizable := 0, 0
	for i, h := range etcd {
		if judge(h, results[i]) {
			agree++
		}
		if results[i] == porcupine.Ok {
			linearizable++
		}
	}
	fmt.Printf("# etcd: %d histories, %d operations, %d linearizable; runs (ms): %s\n", len(etcd), etcdOps, linearizable, fmtTimes(times))
	fmt.Printf("set etcd histories=%d agree=%d median_ms=%.3f\n", len(etcd), agree, median)
	if *perHistory {
		type one struct {
			name string
			ms   float64
			ops  int
		}
		var each []one
		for _, h := range etcd {
			runtime.GC()
			start := time.Now()
			check(registerModel, h, *useEvents)
			each = append(each, one{h.name, float64(time.Since(start).Nanoseconds()) / 1e6, len(h.ops)})
		}
		sort.Slice(each, func(a, b int) bool { return each[a].ms > each[b].ms })
		for _, e := range each[:10] {
			fmt.Printf("# etcd slowest: %s ops=%d ms=%.3f\n", e.name, e.ops, e.ms)
		}
	}

	// kv: each file on its own.
	for _, h := range kv {
		h := h
		median, times, results := timeRuns(*runs, func() []porcupine.CheckResult {
			return []porcupine.CheckResult{check(kvModel, h, *useEvents)}
		})
		agree := 0
		if judge(h, results[0]) {
			agree = 1
		}
		fmt.Printf("# kv %s: %s (expected linearizable=%t); runs (ms): %s\n", h.name, results[0], h.want, fmtTimes(times))
		fmt.Printf("set kv:%s ops=%d agree=%d median_ms=%.3f\n", h.name, len(h.ops), agree, median)
	}

	if differ > 0 {
		fmt.Printf("# %d verdict(s) differ from Porcupine's expected ones\n", differ)
		os.Exit(1)
	}
	fmt.Printf("# all %d etcd and %d kv verdicts agree with porcupine_test.go\n", len(etcd), len(kv))
}
