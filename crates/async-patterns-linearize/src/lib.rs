//! A linearizability checker for concurrent histories.
//!
//! A history records, per operation, when it was called and when (and
//! with what) it returned; an operation whose outcome is unknown (a
//! timeout: it may have taken effect at any time after its call, as
//! Jepsen's `:info`) has no return. An operation that definitely did not
//! happen is left out of the history. The history is *linearizable* if its
//! operations can be put in one order that respects real time (an
//! operation that returned before another was called comes first) and in
//! which a plain sequential [`Model`] gives every recorded output.
//!
//! The search is Wing and Gong's, with Lowe's cache (as Porcupine's): it
//! linearizes the earliest calls first, backtracks at the first return
//! whose operation it has not linearized, and never revisits a (set of
//! linearized operations, model state) pair. A model may split a history
//! into independent parts ([`Model::partition`], e.g. by key), each
//! checked alone, in rounds of growing step budgets so that a part that
//! fails quickly is found before one that takes long. A search that
//! exceeds its budget (steps, over all parts and rounds) answers
//! [`Verdict::Unknown`], never a pass.
//!
//! ```
//! use async_patterns_linearize::{Op, Verdict, check, models::{Register, RegisterOp}};
//!
//! // Client 1 writes 1 (from t=0 to 10); client 2 then reads 0: stale.
//! let history = vec![
//!     Op::returned(1, RegisterOp::Write(1), 0, 10, None),
//!     Op::returned(2, RegisterOp::Read, 11, 12, Some(0)),
//! ];
//! match check(&Register::default(), &history, 100_000) {
//!     Verdict::NotLinearizable(w) => assert_eq!(w.stuck, Some(1)),
//!     other => panic!("{other:?}"),
//! }
//! // Had the read overlapped the write, either value would do.
//! let overlapping = vec![
//!     Op::returned(1, RegisterOp::Write(1), 0, 10, None),
//!     Op::returned(2, RegisterOp::Read, 5, 12, Some(0)),
//! ];
//! assert_eq!(check(&Register::default(), &overlapping, 100_000), Verdict::Linearizable);
//! ```

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

pub mod models;

/// A sequential specification: the state, and what each operation does to
/// it and returns.
pub trait Model {
    /// The state (hashed for the search's cache).
    type State: Clone + Eq + Hash + Debug;
    /// An operation's input.
    type Input: Debug;
    /// An operation's output.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` from `state`, if the specification allows
    /// the operation to return `output` there; `output` is `None` when the
    /// outcome is unknown (any output is then allowed: only the effect
    /// matters).
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Splits the history (by its operations' inputs) into parts that are
    /// linearizable separately: the history is linearizable if and only if
    /// each part is (default: one part, all of it).
    fn partition(&self, inputs: &[&Self::Input]) -> Vec<Vec<usize>> {
        vec![(0..inputs.len()).collect()]
    }
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<I, O> {
    /// Who called it (for reports).
    pub client: u64,
    /// What it was asked.
    pub input: I,
    /// When it was called.
    pub call: u64,
    /// When it returned, and its output (`None`: unknown outcome; it may
    /// have taken effect at any time after its call).
    pub ret: Option<(u64, O)>,
}

impl<I, O> Op<I, O> {
    /// An operation that returned `output` at `ret`.
    pub fn returned(client: u64, input: I, call: u64, ret: u64, output: O) -> Self {
        Op {
            client,
            input,
            call,
            ret: Some((ret, output)),
        }
    }

    /// An operation whose outcome is unknown.
    pub fn unknown(client: u64, input: I, call: u64) -> Self {
        Op {
            client,
            input,
            call,
            ret: None,
        }
    }
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The longest order of operations (indices into the history) the
    /// search could linearize, in that order, within the failing part.
    pub longest_prefix: Vec<usize>,
    /// The operation whose return the search reached first with that
    /// prefix and could not linearize: it returned, so it must come next
    /// or earlier, and no order allows it.
    pub stuck: Option<usize>,
    /// The operations of the failing part.
    pub part: Vec<usize>,
}

/// A check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations explains every output.
    Linearizable,
    /// None does.
    NotLinearizable(Witness),
    /// The search ran out of budget (steps) before it could tell: never a
    /// pass.
    Unknown {
        /// The steps it took.
        steps: u64,
    },
}

const NONE: usize = usize::MAX;

/// An event of the search's list: a call or a return of operation `op`.
#[derive(Clone, Copy)]
struct Node {
    prev: usize,
    next: usize,
    op: usize,
    call: bool,
    /// The call's node for a return, the return's for a call.
    pair: usize,
}

/// Checks `history` against `model`, in at most `budget` search steps over
/// all parts.
pub fn check<M: Model>(model: &M, history: &[Op<M::Input, M::Output>], budget: u64) -> Verdict {
    let inputs: Vec<&M::Input> = history.iter().map(|op| &op.input).collect();
    let parts = model.partition(&inputs);
    // Parts are searched in rounds, each part afresh with a slice of steps
    // four times the last: a part that fails cheaply is found before one
    // that takes long (as Porcupine's parallel check of its parts finds
    // it), at a cost within a third more than the last round.
    let mut open: Vec<&Vec<usize>> = parts.iter().collect();
    let mut slice: u64 = 1 << 12;
    let mut steps: u64 = 0;
    loop {
        let mut undecided = Vec::new();
        for part in open {
            let cap = slice.min(budget.saturating_sub(steps));
            let mut used = 0;
            let verdict = check_part(model, history, part, cap, &mut used);
            steps = steps.saturating_add(used.min(cap));
            match verdict {
                Verdict::Linearizable => {}
                Verdict::NotLinearizable(w) => return Verdict::NotLinearizable(w),
                Verdict::Unknown { .. } if steps >= budget => {
                    return Verdict::Unknown { steps };
                }
                Verdict::Unknown { .. } => undecided.push(part),
            }
        }
        if undecided.is_empty() {
            return Verdict::Linearizable;
        }
        open = undecided;
        slice = slice.saturating_mul(4);
    }
}

fn check_part<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    part: &[usize],
    budget: u64,
    steps: &mut u64,
) -> Verdict {
    // Events sorted by time, a call before a return at the same instant
    // (they overlap: neither precedes the other); an unknown outcome
    // returns at the end of time.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(part.len() * 2);
    for (k, &i) in part.iter().enumerate() {
        let op = &history[i];
        let ret = op.ret.as_ref().map_or(u64::MAX, |(t, _)| *t);
        events.push((op.call, false, k));
        events.push((ret.max(op.call), true, k));
    }
    events.sort_unstable();
    // The list, with a head sentinel at the end.
    let head = events.len();
    let mut nodes: Vec<Node> = events
        .iter()
        .enumerate()
        .map(|(n, &(_, is_ret, k))| Node {
            prev: if n == 0 { head } else { n - 1 },
            next: if n + 1 == events.len() { NONE } else { n + 1 },
            op: k,
            call: !is_ret,
            pair: NONE,
        })
        .collect();
    nodes.push(Node {
        prev: NONE,
        next: if events.is_empty() { NONE } else { 0 },
        op: NONE,
        call: false,
        pair: NONE,
    });
    let mut call_of = vec![NONE; part.len()];
    for n in 0..head {
        if nodes[n].call {
            call_of[nodes[n].op] = n;
        }
    }
    for n in 0..head {
        if !nodes[n].call {
            let c = call_of[nodes[n].op];
            nodes[n].pair = c;
            nodes[c].pair = n;
        }
    }

    let words = part.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state = model.init();
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    // (call node, the state before it)
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck: Option<usize> = None;
    let mut at = nodes[head].next;
    while nodes[head].next != NONE {
        *steps += 1;
        if *steps > budget {
            return Verdict::Unknown { steps: *steps };
        }
        let node = nodes[at];
        if node.call {
            let op = &history[part[node.op]];
            let output = op.ret.as_ref().map(|(_, o)| o);
            if let Some(next) = model.step(&state, &op.input, output) {
                let mut lin = linearized.clone();
                lin[node.op / 64] |= 1 << (node.op % 64);
                if cache.insert((lin.clone(), next.clone())) {
                    stack.push((at, std::mem::replace(&mut state, next)));
                    linearized = lin;
                    lift(&mut nodes, at);
                    at = nodes[head].next;
                    continue;
                }
            }
            at = node.next;
        } else {
            // A return whose operation is not linearized: whatever comes
            // later cannot come before it. Back up.
            if stack.len() > longest.len() || stuck.is_none() && stack.len() == longest.len() {
                longest = stack.iter().map(|(c, _)| part[nodes[*c].op]).collect();
                stuck = Some(part[node.op]);
            }
            let Some((call, before)) = stack.pop() else {
                return Verdict::NotLinearizable(Witness {
                    longest_prefix: longest,
                    stuck,
                    part: part.to_vec(),
                });
            };
            state = before;
            let k = nodes[call].op;
            linearized[k / 64] &= !(1 << (k % 64));
            unlift(&mut nodes, call);
            at = nodes[call].next;
        }
    }
    Verdict::Linearizable
}

/// Takes a call and its return out of the list.
fn lift(nodes: &mut [Node], call: usize) {
    for n in [call, nodes[call].pair] {
        let (p, x) = (nodes[n].prev, nodes[n].next);
        nodes[p].next = x;
        if x != NONE {
            nodes[x].prev = p;
        }
    }
}

/// Puts them back (in the reverse order they were taken out).
fn unlift(nodes: &mut [Node], call: usize) {
    for n in [nodes[call].pair, call] {
        let (p, x) = (nodes[n].prev, nodes[n].next);
        nodes[p].next = n;
        if x != NONE {
            nodes[x].prev = n;
        }
    }
}

/// A small history that still fails, cut out of a failing one by
/// [`minimal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimal {
    /// The operations kept (indices into the history), in history order.
    pub ops: Vec<usize>,
    /// Those of them whose return was forgotten: each counts as an
    /// unknown outcome (it may have taken effect at any time after its
    /// call), so only its effect is needed.
    pub forgotten: Vec<usize>,
    /// The operation the search is stuck at in it, as in the whole
    /// history's witness.
    pub stuck: Option<usize>,
    /// Whether the cut finished (else it stopped at [`MAX_CUT_CHECKS`]
    /// checks, and more might go).
    pub complete: bool,
}

/// Cuts a non-linearizable history down to the operations its failure
/// needs, keeping the failure at the same operation.
///
/// It leaves operations out (halves, then quarters… down to one at a time)
/// and forgets returns, until neither changes anything. An operation is
/// left out only if the rest still fails there both without it and with
/// its outcome unknown (its effect at any time after its call, or never):
/// so a read is never blamed for a value whose write was cut, which a
/// sub-history that merely fails alone could do. Forgetting a return (the outcome becomes unknown)
/// only weakens a history, so what stays known is what the failure needs.
///
/// The result is 1-minimal: leaving out any one more operation, or
/// forgetting any one more return, makes it linearizable, fail at another
/// operation, or run out of `budget` (steps per check). The cut makes at
/// most [`MAX_CUT_CHECKS`] checks; [`Minimal::complete`] says whether it
/// finished within them. The search starts from `witness`'s failing part
/// (from [`check`] of the same history).
pub fn minimal<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    witness: &Witness,
    budget: u64,
) -> Minimal
where
    M::Input: Clone,
    M::Output: Clone,
{
    let stuck = witness.stuck;
    let checks = std::cell::Cell::new(0usize);
    // Whether `keep`, with the returns of `forgotten` forgotten and the
    // operations `freed` free, still fails at `stuck`.
    let still_fails = |keep: &[usize], forgotten: &[usize], freed: &[usize]| -> bool {
        checks.set(checks.get() + 1);
        let mut sub: Vec<Op<M::Input, M::Output>> = Vec::with_capacity(keep.len() + freed.len());
        for &i in keep {
            let mut op = history[i].clone();
            if forgotten.contains(&i) {
                op.ret = None;
            }
            sub.push(op);
        }
        for &i in freed {
            let mut op = history[i].clone();
            op.ret = None;
            sub.push(op);
        }
        match check(model, &sub, budget) {
            Verdict::NotLinearizable(w) => w
                .stuck
                .is_some_and(|k| k < keep.len() && Some(keep[k]) == stuck),
            _ => false,
        }
    };
    let mut keep = witness.part.clone();
    keep.sort_unstable();
    let mut forgotten: Vec<usize> = Vec::new();
    let mut complete = true;
    'cut: loop {
        let mut changed = false;
        let mut chunk = keep.len().div_ceil(2).max(1);
        loop {
            let mut at = 0;
            while at < keep.len() {
                if checks.get() >= MAX_CUT_CHECKS {
                    complete = false;
                    break 'cut;
                }
                let end = (at + chunk).min(keep.len());
                let out = &keep[at..end];
                let rest: Vec<usize> = keep[..at].iter().chain(&keep[end..]).copied().collect();
                if !out.iter().any(|&i| Some(i) == stuck)
                    && still_fails(&rest, &forgotten, &[])
                    && still_fails(&rest, &forgotten, out)
                {
                    forgotten.retain(|i| rest.contains(i));
                    keep = rest;
                    changed = true;
                } else {
                    at = end;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        for &i in &keep.clone() {
            if checks.get() >= MAX_CUT_CHECKS {
                complete = false;
                break 'cut;
            }
            if history[i].ret.is_some() && !forgotten.contains(&i) && Some(i) != stuck {
                forgotten.push(i);
                if still_fails(&keep, &forgotten, &[]) {
                    changed = true;
                } else {
                    forgotten.pop();
                }
            }
        }
        if !changed {
            break;
        }
    }
    forgotten.sort_unstable();
    Minimal {
        ops: keep,
        forgotten,
        stuck,
        complete,
    }
}

/// The most checks [`minimal`] makes.
pub const MAX_CUT_CHECKS: usize = 2_000;
