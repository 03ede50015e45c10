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

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

    /// Whether `input` never changes the state (a read). An operation that
    /// reads and whose outcome is unknown constrains nothing, so the search
    /// leaves it out: each such one left in can double its work (default:
    /// none is a read).
    fn read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
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
    /// An operation that returned `output` at `ret` (not before `call`: a
    /// history with such an operation is [`Verdict::Malformed`]).
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
    /// The history cannot be checked: operation `op` (its index) returned
    /// before it was called. Never a pass.
    Malformed {
        /// The operation.
        op: usize,
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
    checked(model, history, budget).0
}

/// [`check`], and the steps it took.
fn checked<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    budget: u64,
) -> (Verdict, u64) {
    if let Some(op) = history
        .iter()
        .position(|op| op.ret.as_ref().is_some_and(|(ret, _)| *ret < op.call))
    {
        return (Verdict::Malformed { op }, 0);
    }
    let inputs: Vec<&M::Input> = history.iter().map(|op| &op.input).collect();
    let mut parts = model.partition(&inputs);
    // A read of unknown outcome fits anywhere and changes nothing.
    for part in &mut parts {
        part.retain(|&i| history[i].ret.is_some() || !model.read_only(&history[i].input));
    }
    // One part: searched to the end or the budget. Several: searched in
    // turns, each turn resuming every undecided part for twice the steps
    // of the last, so a part that fails cheaply is found before one that
    // takes long (as Porcupine's parallel check of its parts finds it),
    // and no step is taken twice.
    let mut open: Vec<Search<'_, M>> = parts
        .iter()
        .map(|part| Search::new(model, history, part))
        .collect();
    let mut turn: u64 = if open.len() == 1 { u64::MAX } else { 1 << 12 };
    let mut steps: u64 = 0;
    while !open.is_empty() {
        let mut undecided = Vec::with_capacity(open.len());
        for mut search in open {
            let cap = turn.min(budget.saturating_sub(steps));
            let (verdict, used) = search.run(cap);
            steps = steps.saturating_add(used);
            match verdict {
                Some(Verdict::Linearizable) => {}
                Some(failed) => return (failed, steps),
                None if steps >= budget => return (Verdict::Unknown { steps }, steps),
                None => undecided.push(search),
            }
        }
        open = undecided;
        turn = turn.saturating_mul(2);
    }
    (Verdict::Linearizable, steps)
}

/// The search of one part, which can stop after some steps and go on.
struct Search<'a, M: Model> {
    model: &'a M,
    history: &'a [Op<M::Input, M::Output>],
    part: &'a [usize],
    nodes: Vec<Node>,
    head: usize,
    at: usize,
    linearized: Vec<u64>,
    state: M::State,
    cache: Cache<M::State>,
    /// Each operation's random key: the linearized set's hash is the XOR
    /// of its members' (Zobrist's), so a step updates it in O(1).
    keys: Vec<u64>,
    set_hash: u64,
    /// (call node, the state before it)
    stack: Vec<(usize, M::State)>,
    longest: Vec<usize>,
    stuck: Option<usize>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, history: &'a [Op<M::Input, M::Output>], part: &'a [usize]) -> Self {
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
        Search {
            model,
            history,
            part,
            at: nodes[head].next,
            nodes,
            head,
            linearized: vec![0u64; words],
            state: model.init(),
            cache: Cache::new(words),
            keys: (0..part.len() as u64).map(mix).collect(),
            set_hash: 0,
            stack: Vec::new(),
            longest: Vec::new(),
            stuck: None,
        }
    }

    /// Goes on for at most `budget` steps: the verdict if it came (none if
    /// the steps ran out first), and the steps taken.
    fn run(&mut self, budget: u64) -> (Option<Verdict>, u64) {
        let (head, part, history) = (self.head, self.part, self.history);
        let mut steps = 0;
        while self.nodes[head].next != NONE {
            if steps == budget {
                return (None, steps);
            }
            steps += 1;
            let at = self.at;
            let node = self.nodes[at];
            if node.call {
                let op = &history[part[node.op]];
                let output = op.ret.as_ref().map(|(_, o)| o);
                if let Some(next) = self.model.step(&self.state, &op.input, output) {
                    let k = node.op;
                    self.linearized[k / 64] |= 1 << (k % 64);
                    let hash = self.set_hash ^ self.keys[k];
                    if self.cache.insert(hash, &self.linearized, &next) {
                        self.set_hash = hash;
                        let before = std::mem::replace(&mut self.state, next);
                        self.stack.push((at, before));
                        lift(&mut self.nodes, at);
                        self.at = self.nodes[head].next;
                        continue;
                    }
                    self.linearized[k / 64] &= !(1 << (k % 64));
                }
                self.at = node.next;
            } else {
                // A return whose operation is not linearized: whatever comes
                // later cannot come before it. Back up.
                if self.stack.len() > self.longest.len()
                    || self.stuck.is_none() && self.stack.len() == self.longest.len()
                {
                    self.longest = self
                        .stack
                        .iter()
                        .map(|(c, _)| part[self.nodes[*c].op])
                        .collect();
                    self.stuck = Some(part[node.op]);
                }
                let Some((call, before)) = self.stack.pop() else {
                    let witness = Witness {
                        longest_prefix: std::mem::take(&mut self.longest),
                        stuck: self.stuck,
                        part: part.to_vec(),
                    };
                    return (Some(Verdict::NotLinearizable(witness)), steps);
                };
                self.state = before;
                let k = self.nodes[call].op;
                self.linearized[k / 64] &= !(1 << (k % 64));
                self.set_hash ^= self.keys[k];
                unlift(&mut self.nodes, call);
                self.at = self.nodes[call].next;
            }
        }
        (Some(Verdict::Linearizable), steps)
    }
}

/// SplitMix64's finaliser: a well-spread 64-bit key for each number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A multiply-rotate hasher (as rustc's): the cache hashes small states
/// and already-mixed keys, where SipHash's protection against chosen
/// inputs only costs time.
#[derive(Default, Clone, Copy)]
struct Quick(u64);

impl Hasher for Quick {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The (linearized set, state) pairs seen: a map from their hash to a
/// chain of entries, the sets stored end to end in one vector.
struct Cache<S> {
    words: usize,
    heads: HashMap<u64, u32, BuildHasherDefault<Quick>>,
    /// Per entry: its state and the next entry of its chain.
    entries: Vec<(S, u32)>,
    sets: Vec<u64>,
}

impl<S: Eq + Hash> Cache<S> {
    fn new(words: usize) -> Self {
        Cache {
            words,
            heads: HashMap::default(),
            entries: Vec::new(),
            sets: Vec::new(),
        }
    }

    /// Adds the pair (the set's hash given); false if it was there.
    fn insert(&mut self, set_hash: u64, set: &[u64], state: &S) -> bool
    where
        S: Clone,
    {
        let mut h = Quick(set_hash);
        state.hash(&mut h);
        let key = h.finish();
        let head = self.heads.get(&key).copied().unwrap_or(u32::MAX);
        let mut at = head;
        while at != u32::MAX {
            let (s, next) = &self.entries[at as usize];
            let i = at as usize * self.words;
            if s == state && self.sets[i..i + self.words] == *set {
                return false;
            }
            at = *next;
        }
        let index = u32::try_from(self.entries.len()).unwrap_or(u32::MAX - 1);
        self.entries.push((state.clone(), head));
        self.sets.extend_from_slice(set);
        self.heads.insert(key, index);
        true
    }
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
/// most [`MAX_CUT_CHECKS`] checks of at most [`CUT_STEPS`] × `budget`
/// steps in all; [`Minimal::complete`] says whether it finished within
/// them. The search starts from `witness`'s failing part
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
    let spent = std::cell::Cell::new(0u64);
    let total = budget.saturating_mul(CUT_STEPS);
    let exhausted = || checks.get() >= MAX_CUT_CHECKS || spent.get() >= total;
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
        let (verdict, steps) = checked(model, &sub, budget.min(total - spent.get()));
        spent.set(spent.get() + steps);
        match verdict {
            // Stuck at a kept operation (a freed one is past `keep`).
            Verdict::NotLinearizable(w) => w.stuck.and_then(|k| keep.get(k)).copied() == stuck,
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
                if exhausted() {
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
            if exhausted() {
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

/// The most steps [`minimal`] takes in all, in units of its per-check
/// budget.
pub const CUT_STEPS: u64 = 16;

#[cfg(test)]
mod tests {
    use super::Cache;

    /// Two linearized sets that share a hash (a collision the search's
    /// 64-bit hash makes rare) are still told apart, and one seen again is
    /// found, down its chain.
    #[test]
    fn the_cache_tells_colliding_sets_apart() {
        let mut cache = Cache::<u8>::new(2);
        assert!(cache.insert(7, &[1, 0], &5));
        assert!(cache.insert(7, &[0, 1], &5));
        assert!(cache.insert(7, &[1, 0], &6));
        assert!(!cache.insert(7, &[1, 0], &5));
        assert!(!cache.insert(7, &[0, 1], &5));
        assert!(!cache.insert(7, &[1, 0], &6));
        assert!(cache.insert(8, &[1, 0], &5));
    }
}
