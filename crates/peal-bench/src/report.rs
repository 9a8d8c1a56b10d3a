//! Percentiles, the JSON file per scenario, and the table.

use serde_json::{json, Value};
use std::path::PathBuf;

/// p50/p99/p99.9/max/n of `v` (sorted in place); empty → nulls.
pub fn summary(v: &mut [f64]) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return json!({"n": 0, "p50": null, "p99": null, "p999": null, "max": null});
    }
    json!({
        "n": v.len(), "p50": pct(v, 0.5), "p90": pct(v, 0.9), "p99": pct(v, 0.99),
        "p999": pct(v, 0.999), "max": v[v.len() - 1], "min": v[0],
    })
}

/// The `p` quantile of a sorted, non-empty slice (nearest rank).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(pct(&v, 0.5))
}

/// Reads a figure at `path` ("a.b.c") from a summary.
pub fn at(v: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// One line of the table. `lower_is_better` decides which way the goal points.
pub struct Row {
    pub figure: String,
    pub ours: Option<f64>,
    pub baseline: Option<f64>,
    pub unit: &'static str,
    pub goal: Goal,
}

pub enum Goal {
    /// ours / baseline at most this.
    RatioAtMost(f64),
    /// ours / baseline at least this.
    RatioAtLeast(f64),
    /// ours at most baseline + this, in the row's unit.
    AtMostBaselinePlus(f64),
    /// ours at most this, in the row's unit.
    AtMost(f64),
    /// Reported, no goal.
    None,
}

impl Row {
    pub fn new(
        figure: impl Into<String>,
        ours: Option<f64>,
        baseline: Option<f64>,
        unit: &'static str,
        goal: Goal,
    ) -> Row {
        Row {
            figure: figure.into(),
            ours,
            baseline,
            unit,
            goal,
        }
    }

    fn ratio(&self) -> Option<f64> {
        match (self.ours, self.baseline) {
            (Some(o), Some(b)) if b > 0.0 => Some(o / b),
            _ => None,
        }
    }

    fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::RatioAtMost(r) => self.ratio().map(|x| x <= r),
            Goal::RatioAtLeast(r) => self.ratio().map(|x| x >= r),
            Goal::AtMostBaselinePlus(d) => match (self.ours, self.baseline) {
                (Some(o), Some(b)) => Some(o <= b + d),
                _ => None,
            },
            Goal::AtMost(g) => self.ours.map(|o| o <= g),
            Goal::None => None,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::RatioAtMost(r) => format!("≤ {r}x"),
            Goal::RatioAtLeast(r) => format!("≥ {r}x"),
            Goal::AtMostBaselinePlus(d) => format!("≤ baseline + {} {}", num(d), self.unit),
            Goal::AtMost(g) => format!("≤ {} {}", num(g), self.unit),
            Goal::None => "—".into(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "figure": self.figure, "ours": self.ours, "baseline": self.baseline, "unit": self.unit,
            "ratio": self.ratio(), "goal": self.goal_text(), "met": self.met(),
        })
    }
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `target/bench` beside the binary's profile directory, or `$PEAL_BENCH_DIR`.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PEAL_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let mut p = std::env::current_exe().unwrap_or_default();
    p.pop(); // the binary
    p.pop(); // the profile (release, debug)
    p.join("bench")
}

/// Writes `target/bench/<scenario>.json`: the figures and the rows.
pub fn write(scenario: &str, mut figures: Value, rows: &[Row], tiny: bool) -> Result<(), String> {
    if let Some(o) = figures.as_object_mut() {
        o.insert("rows".into(), rows.iter().map(Row::json).collect());
        o.insert("tiny".into(), tiny.into());
        o.insert("machine".into(), machine().into());
    }
    let d = dir();
    std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    let path = d.join(format!("{scenario}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&figures).unwrap_or_default(),
    )
    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    for r in rows {
        println!("{}", line(scenario, &r.json()));
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

fn cell(v: &Value) -> String {
    v.as_f64().map(num).unwrap_or_else(|| "—".into())
}

fn line(scenario: &str, r: &Value) -> String {
    let unit = r["unit"].as_str().unwrap_or("");
    let ratio = r["ratio"]
        .as_f64()
        .map(|x| format!("{x:.2}x"))
        .unwrap_or_else(|| "—".into());
    let met = match r["met"].as_bool() {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    };
    format!(
        "| {scenario} | {} | {} {unit} | {} | {ratio} | {} | {met} |",
        r["figure"].as_str().unwrap_or(""),
        cell(&r["ours"]),
        cell(&r["baseline"]),
        r["goal"].as_str().unwrap_or("")
    )
}

/// The table of every scenario's rows found in target/bench, as markdown.
pub fn print_table() -> Result<(), String> {
    println!("| scenario | figure | ours | baseline | ratio | goal | met |");
    println!("|---|---|---|---|---|---|---|");
    for s in ["ring", "throughput", "connections", "media", "desktop"] {
        let path = dir().join(format!("{s}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!("| {s} | (not run: no {}) | | | | | |", path.display());
            continue;
        };
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let tiny = if v["tiny"].as_bool() == Some(true) {
            " (tiny)"
        } else {
            ""
        };
        for r in v["rows"].as_array().into_iter().flatten() {
            println!("{}", line(&format!("{s}{tiny}"), r));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_an_empty_run_has_none() {
        let mut v: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let s = summary(&mut v);
        assert_eq!(at(&s, "p50"), Some(501.0));
        assert_eq!(at(&s, "p99"), Some(990.0));
        assert_eq!(at(&s, "max"), Some(1000.0));
        assert_eq!(at(&summary(&mut []), "p50"), None);
    }

    #[test]
    fn a_ratio_goal_is_met_only_with_both_figures() {
        let r = Row::new("x", Some(3.0), Some(2.0), "µs", Goal::RatioAtMost(1.5));
        assert_eq!(r.met(), Some(true));
        let r = Row::new("x", Some(3.1), Some(2.0), "µs", Goal::RatioAtMost(1.5));
        assert_eq!(r.met(), Some(false));
        let r = Row::new("x", Some(3.0), None, "µs", Goal::RatioAtMost(1.5));
        assert_eq!(r.met(), None);
    }
}
