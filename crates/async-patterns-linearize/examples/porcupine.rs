//! Our checker on Porcupine's own histories, with Porcupine's expected
//! verdicts (read from its `porcupine_test.go`):
//!
//! ```text
//! cargo run -p async-patterns-linearize --release --example porcupine -- ../shared/anchors/porcupine
//! ```
//!
//! The 102 Jepsen etcd histories (a register with read, write and
//! compare-and-set; a timed-out read, and an operation never answered, has
//! an unknown outcome) and the six key-value histories (get, put and
//! append, partitioned by key). Prints each set's verdicts against
//! Porcupine's and our time per set (parsing excluded, the median of 5
//! runs, one thread), each history within a budget of 20,000,000 search
//! steps (`BUDGET=N`). Exits 1 on a verdict that differs (an unknown
//! counts as one). Lines for people start with `#`; one line per set
//! (`set etcd histories=102 agree=102 median_ms=…`) is for
//! `scripts/porcupine-compare.sh`, which sets it beside Porcupine's own
//! time (`scripts/porcupine-bench.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use async_patterns_linearize::models::{KeyValue, KvOp, KvOut};
use async_patterns_linearize::{Model, Op, Verdict, check};

/// The etcd register: absent at first.
struct Etcd;

#[derive(Debug, Clone)]
enum EtcdIn {
    Read,
    Write(i64),
    Cas(i64, i64),
}

#[derive(Debug, Clone, PartialEq)]
enum EtcdOut {
    Read(Option<i64>),
    Write,
    Cas(bool),
}

impl Model for Etcd {
    type State = Option<i64>;
    type Input = EtcdIn;
    type Output = EtcdOut;
    fn init(&self) -> Option<i64> {
        None
    }
    fn step(&self, s: &Option<i64>, input: &EtcdIn, out: Option<&EtcdOut>) -> Option<Option<i64>> {
        match (input, out) {
            (EtcdIn::Read, None) => Some(*s),
            (EtcdIn::Read, Some(EtcdOut::Read(v))) => (v == s).then_some(*s),
            (EtcdIn::Write(v), _) => Some(Some(*v)),
            (EtcdIn::Cas(from, to), None) => Some(if *s == Some(*from) { Some(*to) } else { *s }),
            (EtcdIn::Cas(from, to), Some(EtcdOut::Cas(ok))) => {
                let swaps = *s == Some(*from);
                (swaps == *ok).then_some(if swaps { Some(*to) } else { *s })
            }
            _ => None,
        }
    }
}

/// Events in file order become instants: a line's index.
struct Builder<I, O> {
    ops: Vec<Op<I, O>>,
    pending: BTreeMap<u64, usize>,
}

impl<I, O> Builder<I, O> {
    fn new() -> Self {
        Builder {
            ops: Vec::new(),
            pending: BTreeMap::new(),
        }
    }
    fn call(&mut self, at: u64, process: u64, input: I) {
        self.pending.insert(process, self.ops.len());
        self.ops.push(Op::unknown(process, input, at));
    }
    fn ret(&mut self, at: u64, process: u64, output: Option<O>) {
        if let Some(i) = self.pending.remove(&process) {
            match output {
                Some(o) => self.ops[i].ret = Some((at, o)),
                // A timed-out read: unknown, returning at the end of
                // time (Porcupine's test closes it at its own line; a read
                // changes nothing, so the verdict is the same).
                None => self.ops[i].ret = None,
            }
        }
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn parse_etcd(text: &str) -> Vec<Op<EtcdIn, EtcdOut>> {
    let mut b = Builder::new();
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.split_once("jepsen.util - ").map(|(_, r)| r) else {
            continue;
        };
        let w = words(rest);
        let (Some(p), Some(kind), Some(f)) = (w.first(), w.get(1), w.get(2)) else {
            continue;
        };
        let Ok(p) = p.parse::<u64>() else { continue };
        let at = n as u64;
        let num = |s: &str| s.trim_matches(|c| c == '[' || c == ']').parse::<i64>().ok();
        match (*kind, *f) {
            (":invoke", ":read") => b.call(at, p, EtcdIn::Read),
            (":invoke", ":write") => b.call(at, p, EtcdIn::Write(num(w[3]).unwrap())),
            (":invoke", ":cas") => {
                b.call(at, p, EtcdIn::Cas(num(w[3]).unwrap(), num(w[4]).unwrap()))
            }
            (":ok", ":read") => b.ret(at, p, Some(EtcdOut::Read(num(w[3])))),
            (":ok", ":write") => b.ret(at, p, Some(EtcdOut::Write)),
            (":ok", ":cas") => b.ret(at, p, Some(EtcdOut::Cas(true))),
            (":fail", ":cas") => b.ret(at, p, Some(EtcdOut::Cas(false))),
            (":fail", ":read") if w.get(3) == Some(&":timed-out") => b.ret(at, p, None),
            _ => {}
        }
    }
    b.ops
}

fn parse_kv(text: &str) -> Vec<Op<KvOp, KvOut>> {
    let mut b = Builder::new();
    for (n, line) in text.lines().enumerate() {
        let field = |name: &str| -> Option<&str> {
            let start = line.find(name)? + name.len();
            let rest = &line[start..];
            Some(rest.split([',', '}']).next()?.trim())
        };
        let (Some(p), Some(kind), Some(f), Some(key)) = (
            field(":process "),
            field(":type "),
            field(":f "),
            field(":key "),
        ) else {
            continue;
        };
        let Ok(p) = p.parse::<u64>() else { continue };
        let key = key.trim_matches('"').to_string();
        let value = line
            .split_once(":value ")
            .map(|(_, v)| v.trim_end_matches('}').trim())
            .unwrap_or("nil");
        let text = (value != "nil").then(|| value.trim_matches('"').to_string());
        let at = n as u64;
        match (kind, f) {
            (":invoke", ":get") => b.call(at, p, KvOp::Get(key)),
            (":invoke", ":put") => b.call(at, p, KvOp::Put(key, text.unwrap_or_default())),
            (":invoke", ":append") => b.call(at, p, KvOp::Append(key, text.unwrap_or_default())),
            // Porcupine's model reads an absent key as "".
            (":ok", ":get") => b.ret(at, p, Some(KvOut::Value(text.filter(|t| !t.is_empty())))),
            (":ok", ":put" | ":append") => b.ret(at, p, Some(KvOut::Done)),
            _ => {}
        }
    }
    b.ops
}

/// Porcupine's expected verdicts, from its test file: `(name, linearizable)`.
fn expected(test_go: &str) -> (BTreeMap<u64, bool>, BTreeMap<String, bool>) {
    let mut etcd = BTreeMap::new();
    let mut kv = BTreeMap::new();
    for line in test_go.lines().map(str::trim) {
        if let Some(args) = line.strip_prefix("checkJepsen(t, ") {
            let mut a = args.trim_end_matches(')').split(", ");
            if let (Some(n), Some(ok)) = (a.next(), a.next()) {
                etcd.insert(n.parse().unwrap(), ok == "true");
            }
        }
        if let Some(args) = line.strip_prefix("checkKv(t, \"") {
            let mut a = args.trim_end_matches(')').split(", ");
            if let (Some(name), Some(ok)) = (a.next(), a.next()) {
                kv.insert(name.trim_matches('"').to_string(), ok == "true");
            }
        }
    }
    (etcd, kv)
}

/// The median of 5 timed runs of `f` (ms), and its last result.
fn timed<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        #[allow(clippy::disallowed_methods)] // a benchmark's own wall clock
        let start = std::time::Instant::now();
        last = Some(f());
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[2], last.expect("ran"))
}

fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/anchors/porcupine".into()),
    );
    let read = |p: &Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| {
            eprintln!(
                "{}: {e} (give Porcupine's folder as the argument)",
                p.display()
            );
            std::process::exit(2)
        })
    };
    let (etcd_expected, kv_expected) = expected(&read(&dir.join("porcupine_test.go")));
    // Search steps per history (`BUDGET=N` to change): out of budget is
    // Unknown, counted as a difference.
    let budget: u64 = std::env::var("BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(20_000_000);
    let mut differ = 0;

    let etcd: Vec<(u64, Vec<Op<EtcdIn, EtcdOut>>)> = etcd_expected
        .keys()
        .map(|n| {
            let file = dir.join(format!("test_data/jepsen/etcd_{n:03}.log"));
            (*n, parse_etcd(&read(&file)))
        })
        .collect();
    let (ms, verdicts) = timed(|| {
        etcd.iter()
            .map(|(n, h)| (*n, check(&Etcd, h, budget)))
            .collect::<Vec<_>>()
    });
    let mut agree = 0;
    for (n, v) in &verdicts {
        let ours = matches!(v, Verdict::Linearizable);
        if ours == etcd_expected[n] && !matches!(v, Verdict::Unknown { .. }) {
            agree += 1;
        } else {
            differ += 1;
            println!(
                "# etcd_{n:03}: ours {v:?}, Porcupine's linearizable = {}",
                etcd_expected[n]
            );
        }
    }
    println!(
        "# etcd: {agree} of {} histories with Porcupine's verdict; {ms:.1} ms for the set (median of 5, one thread)",
        verdicts.len()
    );
    println!(
        "set etcd histories={} agree={agree} median_ms={ms:.3}",
        verdicts.len()
    );
    for (name, want) in &kv_expected {
        let h = parse_kv(&read(&dir.join(format!("test_data/kv/{name}.txt"))));
        let (ms, v) = timed(|| check(&KeyValue, &h, budget));
        let ours = matches!(v, Verdict::Linearizable);
        let same = ours == *want && !matches!(v, Verdict::Unknown { .. });
        differ += usize::from(!same);
        println!(
            "# kv {name}: {} operations, ours linearizable = {ours}, Porcupine's = {want}{}; {ms:.2} ms",
            h.len(),
            if same { "" } else { "  <- DIFFERS" }
        );
        println!(
            "set kv:{name} ops={} agree={} median_ms={ms:.3}",
            h.len(),
            u8::from(same)
        );
    }
    if differ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
