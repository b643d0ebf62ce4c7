//! `TT.now()` of the node's two clock backends: the system clock widened
//! by a configured ε, and the kernel's `adjtimex` error estimate (Linux,
//! when the kernel clock is synchronised; skipped otherwise). Every
//! transaction reads it at least twice (begin, commit timestamp) and
//! commit wait polls it.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian_truetime::{KernelTrueTime, SystemTrueTime, TrueTime};

/// ε of the system-clock backend: 1 ms (it does not change the cost).
const EPSILON_NANOS: u64 = 1_000_000;

fn now(c: &mut Criterion) {
    let mut g = c.benchmark_group("truetime_now");
    let system = SystemTrueTime::new(EPSILON_NANOS);
    g.bench_function("system", |b| b.iter(|| black_box(system.now())));
    match KernelTrueTime::new() {
        Ok(kernel) => {
            g.bench_function("kernel_adjtimex", |b| b.iter(|| black_box(kernel.now())));
        }
        Err(e) => eprintln!("truetime_now/kernel_adjtimex skipped: {e}"),
    }
    g.finish();
}

criterion_group!(benches, now);
criterion_main!(benches);
