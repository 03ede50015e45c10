//! Assertions that a simulation sweep counts: *always*, *sometimes*,
//! *reachable* and *unreachable* points in service code, in the spirit of
//! Antithesis' SDK and FoundationDB's code probes.
//!
//! ```
//! use async_patterns_assert as point;
//!
//! fn store(queue: &mut Vec<u32>, capacity: usize, item: u32) -> Result<(), u32> {
//!     if queue.len() == capacity {
//!         point::reachable!("store full");
//!         return Err(item);
//!     }
//!     queue.push(item);
//!     point::always!("store within capacity", queue.len() <= capacity, "{} items", queue.len());
//!     point::sometimes!("store more than half full", queue.len() * 2 > capacity);
//!     Ok(())
//! }
//! # store(&mut Vec::new(), 1, 7).unwrap();
//! ```
//!
//! | macro | the point holds when | a sweep fails when |
//! |---|---|---|
//! | [`always!`]`(name, cond)` | `cond` is true every time it is evaluated | it is false once, or no seed evaluated it |
//! | [`sometimes!`]`(name, cond)` | `cond` is true at least once | no seed saw it true |
//! | [`reachable!`]`(name)` | the line runs at least once | no seed ran it |
//! | [`unreachable!`]`(name)` | the line never runs | a seed ran it |
//!
//! The *name* is the point's identity: stable, unique within a scenario,
//! and the one the scenario declares in its catalogue (a point a scenario
//! does not declare counts for nothing there, so a sweep knows in advance
//! which points it must reach). A detail message (`format!` arguments after
//! the condition) says what was seen when an `always` fails or an
//! `unreachable` runs.
//!
//! **Cost.** Nothing listens in a production build: each macro is then one
//! relaxed load of a global counter and a branch not taken, and its
//! condition and message are **not evaluated** (as `debug_assert!`, so a
//! condition must have no side effects). A simulation installs a
//! [`Listener`] on the thread that runs it ([`listen`]) and sees every point
//! that thread reaches.
//!
//! # Fault sites
//!
//! [`site!`]`(name)` marks a place where a simulation may inject a fault
//! *right at the call* (FoundationDB's `BUGGIFY`): it returns a [`Fire`]
//! that says what the code there should do: go on, fail as the operation
//! would fail, or wait a while first. The simulation decides (a run's
//! fault plan says which sites are on and how often they fire; it may also
//! crash a host or cut a link at that instant, which the code does not
//! see). With nobody listening it is the same one load and branch, and
//! returns [`Fire::Pass`]:
//!
//! ```
//! use std::time::Duration;
//! use async_patterns_assert::{self as point, Fire};
//!
//! fn write_and_sync(log: &mut Vec<u8>, entry: &[u8]) -> Result<Option<Duration>, &'static str> {
//!     log.extend_from_slice(entry);
//!     match point::site!("log sync") {
//!         Fire::Pass => Ok(None),
//!         Fire::Fail => Err("sync failed"),
//!         // The caller waits this long (on its own timer) before going on.
//!         Fire::Delay(d) => Ok(Some(d)),
//!     }
//! }
//! assert_eq!(write_and_sync(&mut Vec::new(), b"x"), Ok(None));
//! ```

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a point asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// True every time it is evaluated, and evaluated at least once.
    Always,
    /// True at least once.
    Sometimes,
    /// Reached at least once.
    Reachable,
    /// Never reached.
    Unreachable,
}

impl Kind {
    /// Its name in lower case (`"always"`...), as the catalogue prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Sometimes => "sometimes",
            Kind::Reachable => "reachable",
            Kind::Unreachable => "unreachable",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the code at a [`site!`] should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a fault site that fired must be acted on"]
pub enum Fire {
    /// Go on as usual (always, when no simulation listens).
    Pass,
    /// Fail the operation, as it fails in production (an I/O error, a
    /// refused request).
    Fail,
    /// Wait this long, then go on.
    Delay(std::time::Duration),
}

/// Whoever counts the points reached on one thread (the simulation).
pub trait Listener {
    /// A point was reached: `holds` is its condition (`true` for
    /// `reachable`, `unreachable` and a `sometimes` seen true), `detail`
    /// the message given with it (empty if none).
    fn hit(&self, kind: Kind, name: &'static str, holds: bool, detail: fmt::Arguments<'_>);

    /// A numeric guide was measured: `value` of `name` now (default:
    /// ignored). A guided search keeps the runs that raise a guide's best.
    fn guide(&self, name: &'static str, value: u64) {
        let _ = (name, value);
    }

    /// The code reached fault site `name`: what it should do (default:
    /// go on).
    fn site(&self, name: &'static str) -> Fire {
        let _ = name;
        Fire::Pass
    }
}

/// How many threads have a listener installed: zero in production, so
/// every macro stops at one load of it.
static LISTENING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LISTENER: RefCell<Option<Rc<dyn Listener>>> = const { RefCell::new(None) };
}

/// Whether any thread listens (the macros' one branch). Cheap: a relaxed
/// load.
#[inline(always)]
pub fn listening() -> bool {
    LISTENING.load(Ordering::Relaxed) != 0
}

/// Hands a reached point to this thread's listener, if it has one (the
/// macros call it only when [`listening`]).
#[cold]
#[inline(never)]
pub fn report(kind: Kind, name: &'static str, holds: bool, detail: fmt::Arguments<'_>) {
    // Cloned out of the cell, so that a listener reporting a point of its
    // own does not find the cell borrowed.
    let listener = LISTENER.with(|l| l.borrow().clone());
    if let Some(listener) = listener {
        listener.hit(kind, name, holds, detail);
    }
}

/// Asks this thread's listener, if it has one, what the code at fault site
/// `name` should do ([`site!`] calls it only when [`listening`]).
#[cold]
#[inline(never)]
pub fn at_site(name: &'static str) -> Fire {
    let listener = LISTENER.with(|l| l.borrow().clone());
    listener.map_or(Fire::Pass, |l| l.site(name))
}

/// Hands a guide's value to this thread's listener, if it has one
/// ([`guide!`] calls it only when [`listening`]).
#[cold]
#[inline(never)]
pub fn measure(name: &'static str, value: u64) {
    let listener = LISTENER.with(|l| l.borrow().clone());
    if let Some(l) = listener {
        l.guide(name, value);
    }
}

/// Installs `listener` on this thread until the guard is dropped (the
/// listener before it, if any, comes back then).
pub fn listen(listener: Rc<dyn Listener>) -> Listening {
    let before = LISTENER.with(|l| l.borrow_mut().replace(listener));
    LISTENING.fetch_add(1, Ordering::Relaxed);
    Listening {
        before,
        _not_send: std::marker::PhantomData,
    }
}

/// A listener installed on this thread: see [`listen`].
#[must_use = "the listener is removed when this is dropped"]
pub struct Listening {
    before: Option<Rc<dyn Listener>>,
    _not_send: std::marker::PhantomData<Rc<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let before = self.before.take();
        LISTENER.with(|l| *l.borrow_mut() = before);
        LISTENING.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listening")
    }
}

/// `always!(name, condition)`, or with a detail:
/// `always!(name, condition, "format {}", args)`: the condition must hold
/// every time it is evaluated (and it must be evaluated in some seed).
/// Evaluated only while a simulation listens.
#[macro_export]
macro_rules! always {
    ($name:expr, $cond:expr $(,)?) => {
        $crate::always!($name, $cond, "")
    };
    ($name:expr, $cond:expr, $($detail:tt)+) => {
        if $crate::listening() {
            let holds: bool = $cond;
            $crate::report($crate::Kind::Always, $name, holds, ::core::format_args!($($detail)+));
        }
    };
}

/// `sometimes!(name, condition)`: the condition must be true in at least
/// one seed of a sweep. Evaluated only while a simulation listens.
#[macro_export]
macro_rules! sometimes {
    ($name:expr, $cond:expr $(,)?) => {
        $crate::sometimes!($name, $cond, "")
    };
    ($name:expr, $cond:expr, $($detail:tt)+) => {
        if $crate::listening() {
            let holds: bool = $cond;
            $crate::report($crate::Kind::Sometimes, $name, holds, ::core::format_args!($($detail)+));
        }
    };
}

/// `reachable!(name)`: some seed of a sweep must run this line.
#[macro_export]
macro_rules! reachable {
    ($name:expr $(,)?) => {
        $crate::reachable!($name, "")
    };
    ($name:expr, $($detail:tt)+) => {
        if $crate::listening() {
            $crate::report($crate::Kind::Reachable, $name, true, ::core::format_args!($($detail)+));
        }
    };
}

/// `unreachable!(name)`, or with a detail: no seed may run this line (it
/// does not panic: the run reports a violation named `name`). Call it by
/// its path (`point::unreachable!`): the standard `unreachable!` panics.
#[macro_export]
macro_rules! unreachable {
    ($name:expr $(,)?) => {
        $crate::unreachable!($name, "")
    };
    ($name:expr, $($detail:tt)+) => {
        if $crate::listening() {
            $crate::report($crate::Kind::Unreachable, $name, true, ::core::format_args!($($detail)+));
        }
    };
}

/// `site!(name)`: a fault site. Returns what the code here should do (a
/// [`Fire`]): [`Fire::Pass`] unless a simulation listening on this thread
/// fires the site.
#[macro_export]
macro_rules! site {
    ($name:expr $(,)?) => {
        if $crate::listening() {
            $crate::at_site($name)
        } else {
            $crate::Fire::Pass
        }
    };
}

/// `guide!(name, value)`: a number a guided search should push up (the
/// most items in flight, the longest a breaker stayed open, the I/O errors
/// a store survived). A run's best value per name is kept; a search keeps
/// the plans that raise it. `value` is a `u64`, evaluated only while a
/// simulation listens. A guide must be generic: a number that grows as a
/// bug's condition draws near, not the condition itself.
#[macro_export]
macro_rules! guide {
    ($name:expr, $value:expr $(,)?) => {
        if $crate::listening() {
            let value: u64 = $value;
            $crate::measure($name, value);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default)]
    struct Log(RefCell<Vec<(Kind, &'static str, bool, String)>>);

    impl Listener for Log {
        fn hit(&self, kind: Kind, name: &'static str, holds: bool, detail: fmt::Arguments<'_>) {
            self.0
                .borrow_mut()
                .push((kind, name, holds, detail.to_string()));
        }
    }

    #[test]
    fn a_listener_sees_each_point_with_its_condition_and_detail() {
        let log = Rc::new(Log::default());
        let guard = listen(log.clone());
        let x = 3;
        always!("a", x > 2);
        always!("b", x > 5, "x is {x}");
        sometimes!("c", x == 4);
        reachable!("d");
        crate::unreachable!("e", "x = {}", x);
        drop(guard);
        always!("after", false);
        assert_eq!(
            *log.0.borrow(),
            vec![
                (Kind::Always, "a", true, String::new()),
                (Kind::Always, "b", false, "x is 3".to_string()),
                (Kind::Sometimes, "c", false, String::new()),
                (Kind::Reachable, "d", true, String::new()),
                (Kind::Unreachable, "e", true, "x = 3".to_string()),
            ]
        );
    }

    #[test]
    fn nothing_is_evaluated_while_nobody_listens() {
        // Another test's listener may be installed on its own thread: this
        // thread has none, so nothing is reported here either way; with no
        // listener anywhere the condition is not even evaluated.
        let evaluated = Cell::new(0);
        let cond = || {
            evaluated.set(evaluated.get() + 1);
            true
        };
        always!("x", cond());
        assert!(evaluated.get() <= 1);
        if !listening() {
            assert_eq!(evaluated.get(), 0);
        }
    }

    #[test]
    fn guards_nest_and_restore_the_listener_before() {
        let outer = Rc::new(Log::default());
        let inner = Rc::new(Log::default());
        let g1 = listen(outer.clone());
        {
            let _g2 = listen(inner.clone());
            reachable!("in");
        }
        reachable!("out");
        drop(g1);
        assert_eq!(inner.0.borrow().len(), 1);
        assert_eq!(outer.0.borrow()[0].1, "out");
    }

    /// Fires "slow" as a delay and "broken" as a failure; passes the rest;
    /// keeps the guides measured.
    struct Sites(RefCell<Vec<&'static str>>);

    impl Listener for Sites {
        fn hit(&self, _: Kind, _: &'static str, _: bool, _: fmt::Arguments<'_>) {}
        fn guide(&self, name: &'static str, value: u64) {
            assert_eq!((name, value), ("depth", 3));
            self.0.borrow_mut().push(name);
        }
        fn site(&self, name: &'static str) -> Fire {
            self.0.borrow_mut().push(name);
            match name {
                "slow" => Fire::Delay(std::time::Duration::from_millis(7)),
                "broken" => Fire::Fail,
                _ => Fire::Pass,
            }
        }
    }

    #[test]
    fn a_site_does_what_the_listener_says_and_passes_without_one() {
        let sites = Rc::new(Sites(RefCell::new(Vec::new())));
        {
            let _g = listen(sites.clone());
            assert_eq!(
                site!("slow"),
                Fire::Delay(std::time::Duration::from_millis(7))
            );
            assert_eq!(site!("broken"), Fire::Fail);
            assert_eq!(site!("other"), Fire::Pass);
        }
        {
            let _g = listen(sites.clone());
            guide!("depth", 1 + 2);
        }
        guide!("depth", 99);
        assert_eq!(*sites.0.borrow(), ["slow", "broken", "other", "depth"]);
        sites.0.borrow_mut().pop();
        assert_eq!(site!("broken"), Fire::Pass);
        assert_eq!(sites.0.borrow().len(), 3);
        // A listener that knows no sites passes them all.
        let _g = listen(Rc::new(Log::default()));
        assert_eq!(site!("broken"), Fire::Pass);
    }

    #[test]
    fn kinds_print_in_lower_case() {
        let all = [
            Kind::Always,
            Kind::Sometimes,
            Kind::Reachable,
            Kind::Unreachable,
        ];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["always", "sometimes", "reachable", "unreachable"]);
    }
}
