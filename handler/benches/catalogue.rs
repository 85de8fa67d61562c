//! Benchmark (not a test): what checking a message against the catalogue costs the handler,
//! per message, beside what parsing the same message costs (every invocation parses it).
//!
//!     cargo bench -p wsctl-handler --bench catalogue        # RUNS=200000 by default
//!
//! The catalogue is the README's example (`claim_submitted`: required fields, a pattern, an
//! enum, a bounded number, no other field); the message fits it, so every rule runs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use handler::catalogue::Catalogue;
use serde_json::{json, Value};

fn main() {
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let events = BTreeMap::from([(
        "claim_submitted".to_owned(),
        json!({
            "type": "object",
            "required": ["claimId", "amount", "status"],
            "properties": {
                "claimId": {"type": "string", "pattern": "^c-[0-9]{4,}$"},
                "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
                "status": {"enum": ["new", "review", "paid"]},
                "notes": {"type": "array", "items": {"type": "string", "maxLength": 500}, "maxItems": 20}
            },
            "additionalProperties": false
        }),
    )]);
    let start = Instant::now();
    let catalogue = Catalogue::compile(&events, &BTreeMap::new(), false).unwrap();
    let compile = start.elapsed();
    let text = json!({
        "type": "claim_submitted",
        "data": {"claimId": "c-20931", "amount": 120.5, "status": "review", "notes": ["photo attached", "vet invoice"]}
    })
    .to_string();

    let start = Instant::now();
    for _ in 0..runs {
        let v: Value = serde_json::from_str(black_box(&text)).unwrap();
        black_box(v);
    }
    let parse = start.elapsed().as_secs_f64() * 1e9 / f64::from(runs);

    let message: Value = serde_json::from_str(&text).unwrap();
    let start = Instant::now();
    for _ in 0..runs {
        catalogue.check_event(black_box(&message)).unwrap();
    }
    let check = start.elapsed().as_secs_f64() * 1e9 / f64::from(runs);

    println!(
        "catalogue compile (one event): {:.1} µs",
        compile.as_secs_f64() * 1e6
    );
    println!(
        "parse the message ({} bytes), {runs} runs: {parse:.0} ns each",
        text.len()
    );
    println!("check it against the catalogue, {runs} runs: {check:.0} ns each");
}
