//! Histories: what a scenario's clients asked and what they got back,
//! checked for linearizability against a plain sequential model, so that a
//! retried write applied twice or a read served by a lagging replica is
//! caught without an invariant written about it.
//!
//! A client records each operation's call and its end in a [`History`]
//! (kept in the scenario's record); the scenario's `check` hands it to a
//! [`Linearizable`] with a model ([`models::KeyValue`], [`models::Register`]
//! or your own [`Model`]). An operation ends one of three ways:
//!
//! * [`History::ok`]: it returned this output;
//! * [`History::failed`]: it *definitely* did not take effect (the server
//!   refused it before doing anything); it leaves the history;
//! * nothing: a timeout, a lost answer, a crash. Its outcome is unknown: it
//!   may have taken effect at any time after its call (Jepsen's `:info`).
//!   When unsure, leave it unknown: calling a timeout "failed" makes the
//!   checker blame the server for a write that did land.
//!
//! A violation names the operation no order can explain and the operations
//! its failure needs ([`minimal`](async_patterns_linearize::minimal)), and
//! is blamed on that operation's return, where `replay --plot` marks it.
//! A search that runs out of its step budget is *unknown*, never a pass:
//! the run fails as "history unchecked" unless
//! [`Linearizable::unknown_passes`] says otherwise.
//!
//! ```
//! use async_patterns_sim::history::{History, Linearizable, models::{KeyValue, KvOp, KvOut}};
//!
//! // Outside a simulation every call is at time 0: histories are built by
//! // a run's clients, this one by hand.
//! let mut h = History::new();
//! let a = h.call(1, KvOp::Append("k".into(), "x".into()));
//! h.ok(a, KvOut::Done);
//! let g = h.call(2, KvOp::Get("k".into()));
//! h.ok(g, KvOut::Value(Some("xx".into()))); // the append landed twice
//! let v = Linearizable::new(KeyValue).check(&h);
//! assert_eq!(v[0].invariant, "linearizable");
//! assert!(v[0].detail.contains("\"xx\""), "{}", v[0].detail);
//! ```

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::time::Duration;

pub use async_patterns_linearize::{Minimal, Model, Op, Verdict, Witness, models};

use crate::plot::{GREEN, GREY, Lane, RED};
use crate::trace::Violation;

/// The operations of one run, in the order they were called.
#[derive(Debug, Clone)]
pub struct History<I, O> {
    ops: Vec<Op<I, O>>,
    /// Operations that definitely did not happen: left out when checked.
    failed: Vec<bool>,
    ended: Vec<bool>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History {
            ops: Vec::new(),
            failed: Vec::new(),
            ended: Vec::new(),
        }
    }
}

/// An operation called and not yet ended (from [`History::call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "end the operation with ok or failed, or drop it: unknown"]
pub struct Call(usize);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// `client` calls `input`, now (virtual time).
    pub fn call(&mut self, client: u64, input: I) -> Call {
        self.ops
            .push(Op::unknown(client, input, nanos(crate::now())));
        self.failed.push(false);
        self.ended.push(false);
        Call(self.ops.len() - 1)
    }

    /// The call returned `output`, now. An operation ends once: a second
    /// end of it is ignored.
    pub fn ok(&mut self, call: Call, output: O) {
        if !std::mem::replace(&mut self.ended[call.0], true) {
            let op = &mut self.ops[call.0];
            op.ret = Some((nanos(crate::now()).max(op.call), output));
        }
    }

    /// The call definitely did not take effect: it leaves the history.
    pub fn failed(&mut self, call: Call) {
        if !std::mem::replace(&mut self.ended[call.0], true) {
            self.failed[call.0] = true;
        }
    }

    /// An operation observed outside the run's clients, with its own
    /// instants (in nanoseconds of virtual time): e.g. a read of the final
    /// state after the run, at [`end`](History::end) + 1.
    pub fn push(&mut self, op: Op<I, O>) {
        self.ops.push(op);
        self.failed.push(false);
        self.ended.push(true);
    }

    /// The latest instant recorded (a call or a return), in nanoseconds.
    pub fn end(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| op.ret.as_ref().map_or(op.call, |(t, _)| *t))
            .max()
            .unwrap_or(0)
    }

    /// The operations to check: every one called, less those that failed.
    pub fn ops(&self) -> Vec<&Op<I, O>> {
        self.ops
            .iter()
            .zip(&self.failed)
            .filter(|(_, f)| !**f)
            .map(|(op, _)| op)
            .collect()
    }

    /// How many operations were called.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The check of a history against a model: an invariant like any other.
#[derive(Debug, Clone)]
pub struct Linearizable<M> {
    model: M,
    name: String,
    budget: u64,
    cut_budget: u64,
    unknown_passes: bool,
}

impl<M: Model> Linearizable<M> {
    /// Checks against `model`, as the invariant "linearizable", within
    /// 10,000,000 search steps.
    pub fn new(model: M) -> Self {
        Linearizable {
            model,
            name: "linearizable".into(),
            budget: 10_000_000,
            cut_budget: 100_000,
            unknown_passes: false,
        }
    }

    /// The invariant's name in reports (and for `shrink` to keep).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The search's budget in steps (default 10,000,000).
    #[must_use]
    pub fn budget(mut self, steps: u64) -> Self {
        self.budget = steps;
        self
    }

    /// The budget of each check the cut to the operations a failure needs
    /// makes (default 100,000 steps; the cut takes at most
    /// [`CUT_STEPS`](async_patterns_linearize::CUT_STEPS) times that in
    /// all, so a failing run costs at most about 1.6 million steps more):
    /// a check out of budget keeps what it would have cut.
    #[must_use]
    pub fn cut_budget(mut self, steps: u64) -> Self {
        self.cut_budget = steps;
        self
    }

    /// A search out of budget passes the run instead of failing it as
    /// "history unchecked" (the verdict is still unknown: say so in your
    /// scenario's docs).
    #[must_use]
    pub fn unknown_passes(mut self) -> Self {
        self.unknown_passes = true;
        self
    }

    /// The verdict on `history`, with the operations a failure needs.
    pub fn verdict(&self, history: &History<M::Input, M::Output>) -> Checked
    where
        M::Input: Clone,
        M::Output: Clone,
    {
        let ops: Vec<Op<M::Input, M::Output>> = history.ops().into_iter().cloned().collect();
        match async_patterns_linearize::check(&self.model, &ops, self.budget) {
            Verdict::Linearizable => Checked::Linearizable,
            Verdict::Unknown { steps } => Checked::Unknown { steps },
            Verdict::Malformed { op } => Checked::Malformed { op },
            Verdict::NotLinearizable(witness) => {
                let needs =
                    async_patterns_linearize::minimal(&self.model, &ops, &witness, self.cut_budget);
                Checked::Violated { witness, needs }
            }
        }
    }

    /// The violations of `history`: none, one "linearizable" (by the name
    /// given) naming the operations the failure needs, or one "history
    /// unchecked".
    pub fn check(&self, history: &History<M::Input, M::Output>) -> Vec<Violation>
    where
        M::Input: Clone,
        M::Output: Clone,
    {
        match self.verdict(history) {
            Checked::Linearizable => Vec::new(),
            Checked::Unknown { .. } if self.unknown_passes => Vec::new(),
            Checked::Unknown { steps } => {
                let ops = history.ops();
                let unknown = ops.iter().filter(|op| op.ret.is_none()).count();
                vec![Violation::new(
                    "history unchecked",
                    format!(
                        "the {}-operation history ({unknown} of unknown outcome, each open to the \
                         end) was not decided within {steps} search steps (unknown is never a \
                         pass): retire a client after an operation of unknown outcome, spread \
                         operations over more keys, or raise the budget",
                        ops.len()
                    ),
                )]
            }
            Checked::Malformed { op } => {
                let ops = history.ops();
                vec![Violation::new(
                    "history malformed",
                    format!(
                        "operation {op} returned before it was called ({}): the history cannot be \
                         checked",
                        describe(ops[op], false)
                    ),
                )]
            }
            Checked::Violated { witness, needs } => {
                let ops: Vec<&Op<M::Input, M::Output>> = history.ops();
                vec![self.violation(&ops, &witness, &needs)]
            }
        }
    }

    /// The history drawn for `replay --plot` (return it from your
    /// scenario's `lanes`): a lane per client, each operation a span from
    /// its call to its return (green: answered; grey, to the history's end:
    /// outcome unknown), the operations a violation needs in red.
    pub fn lanes(&self, history: &History<M::Input, M::Output>) -> Vec<Lane>
    where
        M::Input: Clone,
        M::Output: Clone,
    {
        let needed = match self.verdict(history) {
            Checked::Violated { needs, .. } => needs.ops,
            _ => Vec::new(),
        };
        let end = history.end();
        let mut lanes: BTreeMap<u64, Lane> = BTreeMap::new();
        for (i, op) in history.ops().into_iter().enumerate() {
            let (to, colour, label) = match &op.ret {
                Some((t, out)) => (*t, GREEN, format!("{:?} -> {:?}", op.input, out)),
                None => (end, GREY, format!("{:?} ?", op.input)),
            };
            let colour = if needed.contains(&i) { RED } else { colour };
            lanes
                .entry(op.client)
                .or_insert_with(|| {
                    Lane::new(format!("client {} operations", op.client))
                        .key(GREEN, "answered")
                        .key(GREY, "outcome unknown")
                        .key(RED, "what the violation needs")
                })
                .spans
                .push((
                    Duration::from_nanos(op.call),
                    Duration::from_nanos(to),
                    colour,
                    label,
                ));
        }
        lanes.into_values().collect()
    }

    fn violation(
        &self,
        ops: &[&Op<M::Input, M::Output>],
        witness: &Witness,
        cut: &Minimal,
    ) -> Violation {
        let mut detail = String::new();
        let stuck = witness.stuck.map(|s| ops[s]);
        if let Some(op) = stuck {
            let _ = write!(detail, "no order explains {}", describe(op, false));
        } else {
            detail.push_str("no order explains the history");
        }
        let _ = write!(
            detail,
            " (the longest order found explains {} of its part's {} operations); it needs only:",
            witness.longest_prefix.len(),
            witness.part.len()
        );
        if !cut.complete {
            detail.push_str(" (the cut stopped at its budget: some of these may not be needed)");
        }
        for &i in &cut.ops {
            let _ = write!(
                detail,
                " [{}]",
                describe(ops[i], cut.forgotten.contains(&i))
            );
        }
        let mut v = Violation::new(self.name.clone(), detail);
        if let Some(op) = stuck {
            let at = op.ret.as_ref().map_or(op.call, |(t, _)| *t);
            v = v.at(Duration::from_nanos(at));
        }
        v
    }
}

/// A history's verdict ([`Linearizable::verdict`]); operations are named
/// by their index in [`History::ops`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Some order explains every output.
    Linearizable,
    /// None does: the search's witness, and the operations the failure
    /// needs.
    Violated {
        /// Where the search got stuck.
        witness: Witness,
        /// The operations the failure needs.
        needs: Minimal,
    },
    /// The history has an operation that returned before it was called
    /// (recorded by hand with [`History::push`]): not checked, not a pass.
    Malformed {
        /// The operation.
        op: usize,
    },
    /// The search ran out of budget: not a pass.
    Unknown {
        /// The steps it took.
        steps: u64,
    },
}

/// `client 2: Get("k") -> Value(Some("xx")) 1.203-1.250 s`.
fn describe<I: Debug, O: Debug>(op: &Op<I, O>, forgotten: bool) -> String {
    // Milliseconds, or microseconds where an instant has them (a history
    // recorded off the simulation's millisecond ticks).
    let fine = !op.call.is_multiple_of(1_000_000)
        || op
            .ret
            .as_ref()
            .is_some_and(|(t, _)| !t.is_multiple_of(1_000_000));
    let secs = |t: u64| {
        let s = Duration::from_nanos(t).as_secs_f64();
        if fine {
            format!("{s:.6}")
        } else {
            format!("{s:.3}")
        }
    };
    match &op.ret {
        Some((t, out)) if !forgotten => format!(
            "client {}: {:?} -> {:?} {}-{} s",
            op.client,
            op.input,
            out,
            secs(op.call),
            secs(*t)
        ),
        Some(_) => format!(
            "client {}: {:?} called at {} s (its answer does not matter)",
            op.client,
            op.input,
            secs(op.call)
        ),
        None => format!(
            "client {}: {:?}, outcome unknown, from {} s",
            op.client,
            op.input,
            secs(op.call)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instants print in ms on the simulation's ticks, in µs where they
    /// have them (two operations inside one ms read apart).
    #[test]
    fn instants_print_as_finely_as_they_were_recorded() {
        let ticks = Op::returned(1, "read", 1_000_000, 12_000_000, 0);
        assert_eq!(
            describe(&ticks, false),
            "client 1: \"read\" -> 0 0.001-0.012 s"
        );
        let fine = Op::returned(2, "read", 250_000, 1_000_000, 0);
        assert_eq!(
            describe(&fine, false),
            "client 2: \"read\" -> 0 0.000250-0.001000 s"
        );
        let open = Op::<_, u8>::unknown(3, "write", 2_000);
        assert_eq!(
            describe(&open, false),
            "client 3: \"write\", outcome unknown, from 0.000002 s"
        );
    }
}
