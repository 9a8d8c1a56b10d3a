//! Every scenario runs at a tiny size, so `make bench` keeps working. No
//! figure is asserted (a tiny run's figures mean nothing): only that each
//! scenario finishes, writes its file and fills in every figure it reports.

use std::process::Command;

#[test]
fn every_benchmark_scenario_runs_at_a_tiny_size_and_reports_each_figure() {
    let out = tempfile::tempdir().expect("tmp");
    let status = Command::new(env!("CARGO_BIN_EXE_peal-bench"))
        .args(["--tiny", "all"])
        .env("PEAL_BENCH_DIR", out.path())
        .status()
        .expect("peal-bench runs");
    assert!(status.success(), "peal-bench --tiny all: {status}");
    for scenario in [
        "ring",
        "throughput",
        "connections",
        "media",
        "network",
        "desktop",
        "flood",
        "soak",
    ] {
        let path = out.path().join(format!("{scenario}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{scenario}: no {}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["tiny"], true, "{scenario}");
        let rows = v["rows"].as_array().expect("rows");
        assert!(!rows.is_empty(), "{scenario} reports nothing");
        for r in rows {
            assert!(
                r["ours"].is_number(),
                "{scenario}: {} has no figure",
                r["figure"]
            );
            if r["goal"].as_str().is_some_and(|g| g.ends_with('x')) {
                assert!(
                    r["baseline"].is_number(),
                    "{scenario}: {} has no baseline",
                    r["figure"]
                );
            }
        }
    }
}
