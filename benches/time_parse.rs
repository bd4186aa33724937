//! Natural time expressions (`明天下午3点 回电话`, `in 2h call back`): the case table's pass rate,
//! the colloquial set's share read exactly,
//! and how many expressions one core parses per second — the whole table per iteration, and two
//! typical messages alone.
//!
//! `cargo bench --bench time_parse`; results in docs/performance.md.

use std::hint::black_box;

use chrono::TimeZone;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wecom_scrm::bot::time::parse;
use wecom_scrm::bot::time_cases;

const DEFAULT_HOUR: u32 = 9;

fn time_parse(c: &mut Criterion) {
    let tz = chrono_tz::Asia::Shanghai;
    let cases = time_cases::read(include_str!("../tests/data/parse-time.tsv"), tz).expect("the table reads");
    let failures: Vec<String> = cases.iter().filter_map(|case| case.check(DEFAULT_HOUR).err()).collect();
    println!(
        "case table: {} of {} pass ({:.1} %)",
        cases.len() - failures.len(),
        cases.len(),
        100.0 * (cases.len() - failures.len()) as f64 / cases.len() as f64
    );
    for failure in &failures {
        println!("  fails: {failure}");
    }
    let colloquial =
        time_cases::read(include_str!("../tests/data/colloquial-times.tsv"), tz).expect("the colloquial set reads");
    let readings: Vec<time_cases::Reading> = colloquial.iter().map(|c| c.reading(DEFAULT_HOUR)).collect();
    let count = |r: time_cases::Reading| readings.iter().filter(|x| **x == r).count();
    println!(
        "colloquial set: {} of {} read exactly ({:.1} %), {} refused, {} other rest, {} read as another instant",
        count(time_cases::Reading::Exact),
        colloquial.len(),
        100.0 * count(time_cases::Reading::Exact) as f64 / colloquial.len() as f64,
        count(time_cases::Reading::Refused),
        count(time_cases::Reading::OtherRest),
        count(time_cases::Reading::Wrong)
    );

    let mut group = c.benchmark_group("time");
    group.throughput(Throughput::Elements(cases.len() as u64));
    group.bench_function("the case table", |b| {
        b.iter(|| {
            for case in &cases {
                let _ = black_box(parse(black_box(case.input), case.now, DEFAULT_HOUR));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    let now = tz.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    for message in ["明天下午3点 回电话", "in 2h call back"] {
        group.bench_function(message, |b| {
            b.iter(|| parse(black_box(message), now, DEFAULT_HOUR).expect("parses"))
        });
    }
    group.finish();
}

criterion_group!(benches, time_parse);
criterion_main!(benches);
