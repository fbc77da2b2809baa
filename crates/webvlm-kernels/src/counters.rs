//! What the GPU work of a token costs the host: compute dispatches, queue submissions, bytes
//! read back and waits on the device, counted where they happen, never estimated.
//!
//! - **Dispatches** come from CubeCL's launch observer: every kernel launch on burn's client
//!   (our WGSL launchers and burn's own tensor ops alike) is reported to it, on the issuing
//!   thread, before it is queued.
//! - **Submissions** come from the wgpu queue: natively, a probe submits an empty command list
//!   and reads the submission index wgpu returns, which grows by one per `Queue::submit`
//!   (the probe's own submission is subtracted). In a browser the worker counts them by
//!   wrapping `GPUQueue.prototype.submit` (web/src/worker/gpu-counters.ts) instead.
//! - **Bytes read back** and **syncs** (host waits on the device) are counted by the only
//!   paths that read or wait: `webvlm_model::device::{read_*, wait}` and [`crate::gpu::wait`].
//!
//! Counts are process-wide and only grow; callers take a [`GpuCounts`] snapshot before and
//! after the work they measure and subtract ([`GpuCounts::since`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use burn_cubecl::cubecl::logging::{LaunchObservation, LaunchObserver};

/// Host-side cost of some GPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuCounts {
    /// Compute dispatches (kernel launches).
    pub dispatches: u64,
    /// Queue submissions (0 where no probe is set: the browser counts them in JavaScript).
    pub submissions: u64,
    /// Bytes copied from the device to the host.
    pub readback_bytes: u64,
    /// Times the host waited for the device (a readback or an explicit wait).
    pub syncs: u64,
}

impl GpuCounts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &GpuCounts) -> GpuCounts {
        GpuCounts {
            dispatches: self.dispatches.saturating_sub(earlier.dispatches),
            submissions: self.submissions.saturating_sub(earlier.submissions),
            readback_bytes: self.readback_bytes.saturating_sub(earlier.readback_bytes),
            syncs: self.syncs.saturating_sub(earlier.syncs),
        }
    }
}

static DISPATCHES: AtomicU64 = AtomicU64::new(0);
static READBACK_BYTES: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
/// Submissions the probes themselves made (subtracted from the queue's index).
static PROBE_SUBMITS: AtomicU64 = AtomicU64::new(0);

/// Reads the queue's submission index by submitting nothing (natively; see the module docs).
pub type SubmissionProbe = Box<dyn Fn() -> Option<u64> + Send + Sync>;

static PROBE: OnceLock<Mutex<Option<SubmissionProbe>>> = OnceLock::new();
static OBSERVING: OnceLock<Mutex<Option<LaunchObservation>>> = OnceLock::new();

struct CountLaunches;

thread_local! {
    /// Dispatches issued from this thread (the observer runs on the issuing thread).
    static THREAD_DISPATCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl LaunchObserver for CountLaunches {
    fn launched(&self, _kernel: &'static str) {
        DISPATCHES.fetch_add(1, Ordering::Relaxed);
        THREAD_DISPATCHES.with(|c| c.set(c.get() + 1));
    }
}

/// Dispatches issued from the calling thread so far: a count other threads' work cannot
/// disturb (tests that share the process and the device run side by side).
pub fn thread_dispatches() -> u64 {
    THREAD_DISPATCHES.with(std::cell::Cell::get)
}

/// Start counting dispatches (idempotent; the observer stays for the life of the process and
/// costs an atomic and a thread-local increment per launch).
pub fn install() {
    let slot = OBSERVING.get_or_init(|| Mutex::new(None));
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        *slot = Some(LaunchObservation::new(Arc::new(CountLaunches)));
    }
}

/// Give the counters a way to read the queue's submission index (native wgpu).
pub fn set_submission_probe(probe: SubmissionProbe) {
    let slot = PROBE.get_or_init(|| Mutex::new(None));
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(probe);
}

/// Record `bytes` copied from the device to the host, and the wait that took.
pub fn record_readback(bytes: u64) {
    READBACK_BYTES.fetch_add(bytes, Ordering::Relaxed);
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

/// Record a host wait on the device that read nothing back.
pub fn record_sync() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

/// Submissions so far, net of the probes' own; 0 without a probe.
fn submissions() -> u64 {
    let Some(slot) = PROBE.get() else { return 0 };
    let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(probe) = guard.as_ref() else { return 0 };
    match probe() {
        Some(index) => {
            let probes = PROBE_SUBMITS.fetch_add(1, Ordering::Relaxed) + 1;
            index.saturating_sub(probes)
        }
        None => 0,
    }
}

/// The counts so far. Takes one (empty) queue submission natively to read the queue.
pub fn snapshot() -> GpuCounts {
    GpuCounts {
        dispatches: DISPATCHES.load(Ordering::Relaxed),
        submissions: submissions(),
        readback_bytes: READBACK_BYTES.load(Ordering::Relaxed),
        syncs: SYNCS.load(Ordering::Relaxed),
    }
}
