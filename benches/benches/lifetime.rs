//! Benchmarks of the BG/NBD lifetime model: the maximum-likelihood fit the coordinator runs over
//! every customer's grouped history (`AdminService.FitLifetimeModel`), and the per-customer
//! prediction every activity read computes.
//!
//! Goal: fitting 100 000 customers in ≤ 2 s. Run with
//! `cargo bench -p pulse-benches --bench lifetime -- --sample-size 10`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_scoring::{HistoryCounts, LifetimeParams, PurchaseHistory, fit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};

/// Customers in the fit benchmark.
const CUSTOMERS: u64 = 100_000;

/// FHL 2005's CDNOW estimates with α converted from weeks to days: a realistic population.
fn cdnow_in_days(modified: bool) -> LifetimeParams {
    LifetimeParams { r: 0.243, alpha: 4.414 * 7.0, a: 0.793, b: 2.426, modified }
}

/// Simulates the (M)BG/NBD process for `customers` customers first seen uniformly over the last
/// two years, and groups their whole-day histories as shards would. Seeded: every run benchmarks
/// the same data.
fn simulate(truth: &LifetimeParams, customers: u64, seed: u64) -> HistoryCounts {
    let mut rng = StdRng::seed_from_u64(seed);
    let rates = Gamma::new(truth.r, 1.0 / truth.alpha).expect("valid gamma");
    let dropouts = Beta::new(truth.a, truth.b).expect("valid beta");
    let mut counts = HistoryCounts::new();
    for _ in 0..customers {
        let age = rng.random_range(0..=730u32);
        let lambda: f64 = rates.sample(&mut rng);
        let p: f64 = dropouts.sample(&mut rng);
        let gaps = Exp::new(lambda.max(1e-12)).expect("valid exponential");
        let (mut x, mut last_day, mut now) = (0u32, 0u32, 0.0);
        let mut alive = !(truth.modified && rng.random::<f64>() < p);
        while alive {
            now += gaps.sample(&mut rng);
            if now >= f64::from(age) {
                break;
            }
            let day = now as u32;
            if day != last_day {
                x += 1;
                last_day = day;
            }
            alive = rng.random::<f64>() >= p;
        }
        counts.add(PurchaseHistory { x, t_x: last_day, t: age }, 1);
    }
    counts
}

fn fit_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifetime");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CUSTOMERS));
    for (name, modified) in [("fit BG/NBD on 100k customers", false), ("fit MBG/NBD on 100k customers", true)]
    {
        let counts = simulate(&cdnow_in_days(modified), CUSTOMERS, 2005);
        eprintln!("{name}: {} distinct histories", counts.len());
        group.bench_function(name, |b| b.iter(|| fit(black_box(&counts), modified).expect("fit converges")));
    }
    group.finish();
}

fn predict_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifetime");
    group.throughput(Throughput::Elements(1));
    let params = cdnow_in_days(false);
    let cases = [
        ("predict one customer (regular buyer)", PurchaseHistory { x: 6, t_x: 200, t: 260 }),
        ("predict one customer (new today)", PurchaseHistory { x: 0, t_x: 0, t: 0 }),
        ("predict one customer (daily buyer, 3 years)", PurchaseHistory { x: 1000, t_x: 1090, t: 1095 }),
    ];
    for (name, history) in cases {
        group.bench_function(name, |b| b.iter(|| params.predict(black_box(&history), black_box(30.0))));
    }
    group.finish();
}

criterion_group!(benches, fit_benches, predict_benches);
criterion_main!(benches);
