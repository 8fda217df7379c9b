//! Host calls and VM entries per request, counted and timed in builds with
//! `--features call-count` (`scripts/bench` builds one to report them); in the shipped build
//! every function here is empty and compiles away.
//!
//! A count is this VM's: ticks and call answers delivered to the root context are left out,
//! so one request at a time gives that request's figures. A VM entry is a callback Envoy makes
//! into the module, including the allocation it asks for to hand back a header map, a property
//! or a call's answer (shared-data reads, never on a cached request's path, count as host
//! calls only).
//!
//! Times are read on the host clock around each host call and each callback, so they include
//! what Envoy does inside the call (and the allocation entry a read makes). A request with
//! `x-call-cost: reset` clears them; one with `x-call-cost: report` logs, at its stream's end,
//! mean times per call site and per callback since the reset, and the clock's own cost.
//! Stages of the filter's own work (parsing the header map, the decision) are timed too: each
//! callback's time is its host calls plus its own work. Either header also makes the stream
//! log its counts.

#[cfg(feature = "call-count")]
mod counting {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::panic::Location;
    use std::time::UNIX_EPOCH;

    use crate::request::header_map::HeaderMap;

    type Site = &'static Location<'static>;
    /// A source line: `file:line`.
    type Line = (&'static str, u32);
    /// A callback's time, the time in its host calls, and their number.
    type CallbackSample = (u64, u64, u64);

    thread_local! {
        /// (host calls, VM entries) since the last report.
        static COUNTS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
        /// The request path's figures, kept for the report at the end of the stream.
        static REQUEST: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
        /// Where each counted call and entry was made, in order (`h`: host call, `v`: entry).
        static SITES: RefCell<Vec<(char, Site)>> = const { RefCell::new(Vec::new()) };
        /// What the stream being ended asked for with `x-call-cost`.
        static CONTROL: Cell<Control> = const { Cell::new(Control::None) };
        /// Nanoseconds per host call site, per stage of the filter's own work, and per
        /// callback, since the last reset.
        static CALLS: RefCell<BTreeMap<Line, Vec<u64>>> = const { RefCell::new(BTreeMap::new()) };
        static WORK: RefCell<BTreeMap<Line, Vec<u64>>> = const { RefCell::new(BTreeMap::new()) };
        static CALLBACKS: RefCell<BTreeMap<Line, Vec<CallbackSample>>> = const { RefCell::new(BTreeMap::new()) };
        /// Streams since the last reset.
        static STREAMS: Cell<u64> = const { Cell::new(0) };
        /// Host-call time and count inside the callback running now.
        static INNER: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        /// Set while work that belongs to no request runs.
        static OUTSIDE: Cell<bool> = const { Cell::new(false) };
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Control {
        None,
        Reset,
        Report,
    }

    fn now_ns() -> u64 {
        proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .unwrap_or(0)
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Call,
        Work,
        Callback,
    }

    /// Ends the timing of a host call, a stage of work or a callback when dropped.
    #[must_use]
    pub struct Timed {
        site: Site,
        start: u64,
        kind: Kind,
        outer: (u64, u64),
    }

    impl Drop for Timed {
        fn drop(&mut self) {
            if OUTSIDE.get() {
                return;
            }
            let took = now_ns().saturating_sub(self.start);
            let key = (self.site.file(), self.site.line());
            match self.kind {
                Kind::Callback => {
                    let (inner, calls) = INNER.replace(self.outer);
                    CALLBACKS
                        .with_borrow_mut(|m| m.entry(key).or_default().push((took, inner, calls)));
                }
                Kind::Call => {
                    let (inner, calls) = INNER.get();
                    INNER.set((inner + took, calls + 1));
                    CALLS.with_borrow_mut(|m| m.entry(key).or_default().push(took));
                }
                Kind::Work => WORK.with_borrow_mut(|m| m.entry(key).or_default().push(took)),
            }
        }
    }

    /// Makes one host call, counted and timed.
    #[track_caller]
    pub fn host<T>(call: impl FnOnce() -> T) -> T {
        timed_call(Location::caller(), call)
    }

    fn timed_call<T>(site: Site, call: impl FnOnce() -> T) -> T {
        COUNTS.set((COUNTS.get().0 + 1, COUNTS.get().1));
        SITES.with_borrow_mut(|s| s.push(('h', site)));
        let _timed = Timed {
            site,
            start: now_ns(),
            kind: Kind::Call,
            outer: (0, 0),
        };
        call()
    }

    /// Runs a stage of the filter's own work (no host calls in it), timed.
    #[track_caller]
    pub fn work<T>(stage: impl FnOnce() -> T) -> T {
        let _timed = Timed {
            site: Location::caller(),
            start: now_ns(),
            kind: Kind::Work,
            outer: (0, 0),
        };
        stage()
    }

    /// A callback from Envoy: counted as a VM entry and timed as a whole.
    #[track_caller]
    pub fn callback() -> Timed {
        vm_entry();
        Timed {
            site: Location::caller(),
            start: now_ns(),
            kind: Kind::Callback,
            outer: INNER.replace((0, 0)),
        }
    }

    #[track_caller]
    pub fn vm_entry() {
        COUNTS.set((COUNTS.get().0, COUNTS.get().1 + 1));
        let at = Location::caller();
        SITES.with_borrow_mut(|s| s.push(('v', at)));
    }

    /// Runs work that belongs to no request (a tick, a key-set answer) without counting it.
    pub fn outside_request<T>(f: impl FnOnce() -> T) -> T {
        let counts = COUNTS.get();
        let sites = SITES.with_borrow(Vec::len);
        let was = OUTSIDE.replace(true);
        let out = f();
        OUTSIDE.set(was);
        COUNTS.set(counts);
        SITES.with_borrow_mut(|s| s.truncate(sites));
        out
    }

    /// Reads this request's `x-call-cost` header.
    pub fn control(headers: &HeaderMap) {
        let c = match headers.header("x-call-cost") {
            Some("reset") => Control::Reset,
            Some("report") => Control::Report,
            _ => Control::None,
        };
        if c == Control::Reset {
            CALLS.with_borrow_mut(BTreeMap::clear);
            WORK.with_borrow_mut(BTreeMap::clear);
            CALLBACKS.with_borrow_mut(BTreeMap::clear);
            STREAMS.set(0);
        }
        CONTROL.set(c);
    }

    #[track_caller]
    pub fn request_done() {
        REQUEST.set(COUNTS.replace((0, 0)));
        STREAMS.set(STREAMS.get() + 1);
        let at = Location::caller();
        SITES.with_borrow_mut(|s| s.push(('|', at)));
    }

    /// Envoy's clock for wasm moves in whole microseconds, so one reading tells little, but a
    /// mean over many (each window starting at a random point of a microsecond) is unbiased.
    /// Samples over 20 µs are left out: a cached request's calls never take that long, a
    /// preempted one does.
    fn mean(xs: Vec<u64>) -> u64 {
        let kept: Vec<u64> = xs.into_iter().filter(|x| *x <= 20_000).collect();
        kept.iter().sum::<u64>() / (kept.len().max(1) as u64)
    }

    fn report() -> String {
        let clock = mean(
            (0..2000)
                .map(|_| {
                    let a = now_ns();
                    now_ns().saturating_sub(a)
                })
                .collect(),
        );
        // What this build's own bookkeeping adds to a callback per timed call or stage, beside
        // the clock reading inside the timed span: an empty call timed 1,000 times, its
        // samples then dropped.
        let probe = Location::caller();
        let start = now_ns();
        for _ in 0..1000 {
            timed_call(probe, || ());
        }
        let per = now_ns().saturating_sub(start) / 1000;
        CALLS.with_borrow_mut(|m| m.remove(&(probe.file(), probe.line())));
        SITES.with_borrow_mut(Vec::clear);
        COUNTS.set((0, 0));
        INNER.set((0, 0));
        let bookkeeping = per.saturating_sub(clock);
        let streams = STREAMS.get().max(1);
        let calls = CALLS.take().into_iter().map(|((file, line), xs)| {
            let n = xs.len() as f64 / streams as f64;
            format!("h {file}:{line} {n:.2} {}", mean(xs))
        });
        let work = WORK.take().into_iter().map(|((file, line), xs)| {
            let n = xs.len() as f64 / streams as f64;
            format!("w {file}:{line} {n:.2} {}", mean(xs))
        });
        let callbacks = CALLBACKS.take().into_iter().map(|((file, line), xs)| {
            let n = xs.len() as f64 / streams as f64;
            let calls = xs.iter().map(|x| x.2).sum::<u64>() as f64 / xs.len().max(1) as f64;
            let total = mean(xs.iter().map(|x| x.0).collect());
            let inner = mean(xs.iter().map(|x| x.1).collect());
            format!("v {file}:{line} {n:.2} {total} {inner} {calls:.2}")
        });
        format!(
            "call-cost: {streams} streams, clock {clock} ns, bookkeeping {bookkeeping} ns; [{}]",
            calls
                .chain(work)
                .chain(callbacks)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    pub fn stream_done() {
        let (rh, rv) = REQUEST.replace((0, 0));
        let (h, v) = COUNTS.replace((0, 0));
        let sites = SITES.take();
        let control = CONTROL.replace(Control::None);
        if control == Control::None {
            return;
        }
        let sites: Vec<String> = sites
            .into_iter()
            .map(|(k, l)| format!("{k} {}:{}", l.file(), l.line()))
            .collect();
        // Not through `host::log`, which would count this line.
        let _ = proxy_wasm::hostcalls::log(
            proxy_wasm::types::LogLevel::Warn,
            &format!("call-count: request path {rh} host calls, {rv} VM entries; response path and end {h} host calls, {v} VM entries; sites [{}]", sites.join(", ")),
        );
        if control == Control::Report {
            let _ = proxy_wasm::hostcalls::log(proxy_wasm::types::LogLevel::Warn, &report());
        }
    }
}

#[cfg(not(feature = "call-count"))]
mod counting {
    #[must_use]
    pub struct Timed;

    #[inline(always)]
    pub fn host<T>(call: impl FnOnce() -> T) -> T {
        call()
    }
    #[inline(always)]
    pub fn work<T>(stage: impl FnOnce() -> T) -> T {
        stage()
    }
    #[inline(always)]
    pub fn callback() -> Timed {
        Timed
    }
    #[inline(always)]
    pub fn vm_entry() {}
    pub fn outside_request<T>(f: impl FnOnce() -> T) -> T {
        f()
    }
    #[inline(always)]
    pub fn control(_headers: &crate::request::header_map::HeaderMap) {}
    pub fn request_done() {}
    pub fn stream_done() {}
}

pub use counting::*;
