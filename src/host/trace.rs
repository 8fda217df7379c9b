//! Host calls and VM entries per request, counted in builds with `--features call-count`
//! (`scripts/bench` builds one to report them); in the shipped build every function here is
//! empty and compiles away. A count is this VM's: ticks and call answers delivered to the root
//! context are left out, so one request at a time gives that request's figures. A VM entry
//! is a callback Envoy makes into the module, including the allocation it asks for to hand
//! back a header map, a property or a call's answer (shared-data reads, never on a cached
//! request's path, count as host calls only).

#[cfg(feature = "call-count")]
mod counting {
    use std::cell::{Cell, RefCell};
    use std::panic::Location;

    thread_local! {
        /// (host calls, VM entries) since the last report.
        static COUNTS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
        /// The request path's figures, kept for the report at the end of the stream.
        static REQUEST: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
        /// Where each counted call and entry was made, in order (`h`: host call, `v`: entry).
        static SITES: RefCell<Vec<(char, &'static Location<'static>)>> = const { RefCell::new(Vec::new()) };
    }

    #[track_caller]
    pub fn host_call() {
        COUNTS.set((COUNTS.get().0 + 1, COUNTS.get().1));
        let at = Location::caller();
        SITES.with_borrow_mut(|s| s.push(('h', at)));
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
        let out = f();
        COUNTS.set(counts);
        SITES.with_borrow_mut(|s| s.truncate(sites));
        out
    }

    #[track_caller]
    pub fn request_done() {
        REQUEST.set(COUNTS.replace((0, 0)));
        let at = Location::caller();
        SITES.with_borrow_mut(|s| s.push(('|', at)));
    }

    pub fn stream_done() {
        let (rh, rv) = REQUEST.replace((0, 0));
        let (h, v) = COUNTS.replace((0, 0));
        let sites: Vec<String> = SITES
            .take()
            .into_iter()
            .map(|(k, l)| format!("{k} {}:{}", l.file(), l.line()))
            .collect();
        // Not through `host::log`, which would count this line.
        let _ = proxy_wasm::hostcalls::log(
            proxy_wasm::types::LogLevel::Warn,
            &format!("call-count: request path {rh} host calls, {rv} VM entries; response path and end {h} host calls, {v} VM entries; sites [{}]", sites.join(", ")),
        );
    }
}

#[cfg(not(feature = "call-count"))]
mod counting {
    #[inline(always)]
    pub fn host_call() {}
    #[inline(always)]
    pub fn vm_entry() {}
    pub fn outside_request<T>(f: impl FnOnce() -> T) -> T {
        f()
    }
    pub fn request_done() {}
    pub fn stream_done() {}
}

pub use counting::*;
