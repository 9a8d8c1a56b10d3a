//! Call media across shaped paths, beside libwebrtc on the same path in the
//! same run (issue 12's benchmark).
//!
//! For each profile (`peal-netem`'s named ones: clean, loss3, narrow600,
//! lossy1m, step), a fresh path between two network namespaces, then:
//!
//! - **Peal**: a server and `peal call` on side A, `peal answer` on side B
//!   (real processes, release build), both sending the camera-like
//!   `synthetic-hd` picture and the tone, `--stats-every 1000`;
//! - **libwebrtc**: a fresh path with the same profile, then two headless
//!   Chromiums, one per side, calling each other (`chromium/network.mjs`),
//!   their fake cameras playing the same picture (a Y4M file written here
//!   from `peal_media::synthetic`), sampled once a second with `getStats()`.
//!
//! Per profile, at the callee: fps decoded (from the second second on),
//! corrupt frames shown (Peal's frames carry a verified header; libwebrtc
//! never decodes against a missing reference), freezes and their total time
//! (libwebrtc's definition on both sides), capture → decoded p50/p95 (Peal;
//! for libwebrtc, RTT/2 + its mean jitter-buffer delay, in the JSON only),
//! audio concealed; at the caller: the payload it sent per second against
//! the link rate, the time to settle under a narrow or stepped-down link and,
//! after a step up, to recover to 80% of the rate before the step.
//! Writes `target/bench/network.json`. Needs root (network namespaces).
//!
//! `peal-bench network [--profiles clean,loss3,...] [--secs 15] [--source hd|light]`

use crate::report::{median, write, Goal, Row};
use peal_netem::{Path, Profile, Side};
use peal_tests::across::{last_stats, CallAcross};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Profiles, by name or as `peal-netem` parameters, comma-separated.
    #[arg(long, default_value = "clean,loss3,narrow600,lossy1m,step")]
    pub profiles: String,
    /// Length of each call (a stepped profile's calls last its steps + 5 s).
    #[arg(long, default_value_t = 15)]
    pub secs: u64,
    /// `hd`: the camera-like picture (VP8 spends 1-1.5 Mbit/s on it);
    /// `light`: the cheap pattern and Chromium's own fake camera.
    #[arg(long, default_value = "hd")]
    pub source: String,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                profiles: "clean,loss3".into(),
                secs: 5,
                source: "light".into(),
            }
        } else {
            self.clone()
        }
    }
}

/// A counter over time: (wall clock ms, value).
type Series = Vec<(u64, f64)>;

/// What one call across one path showed, Peal's or libwebrtc's.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    fps: Option<f64>,
    corrupt: Option<f64>,
    freezes: Option<f64>,
    freeze_s: Option<f64>,
    latency_p50: Option<f64>,
    latency_p95: Option<f64>,
    audio_concealed_pct: Option<f64>,
    /// Median payload rate over the second half of the call.
    sent_kbps: Option<f64>,
    /// The link's rate (None: unlimited or stepped).
    link_kbps: Option<f64>,
    /// From the first media to a rate that stays ≤ 90% of a limited link.
    settle_s: Option<f64>,
    /// After the first step down, to a rate that stays under the new rate.
    step_settle_s: Option<f64>,
    /// After the step back up, to ≥ 80% of the rate before the step down.
    step_recover_s: Option<f64>,
}

/// Frames per second of a counter, from one second after it first moved
/// to its end.
fn rate_after_first(s: &[(u64, f64)]) -> Option<f64> {
    let first = s.iter().find(|(_, v)| *v > 0.0)?.0;
    let from = s.iter().find(|(t, _)| *t >= first + 1000)?;
    let to = s.last()?;
    (to.0 > from.0).then(|| (to.1 - from.1) * 1000.0 / (to.0 - from.0) as f64)
}

/// kbit/s between consecutive samples of a byte counter, at the later one.
fn kbps(bytes: &[(u64, f64)]) -> Series {
    bytes
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, (w[1].1 - w[0].1) * 8.0 / (w[1].0 - w[0].0) as f64))
        .collect()
}

/// The first time from `from` on after which every rate before `until`
/// stays at most `limit`, in seconds after `from`.
fn settled(rates: &[(u64, f64)], from: u64, until: u64, limit: f64) -> Option<f64> {
    let window: Vec<_> = rates
        .iter()
        .filter(|(t, _)| *t >= from && *t < until)
        .collect();
    let last_over = window.iter().rposition(|(_, r)| *r > limit);
    let at = match last_over {
        None => window.first()?.0,
        Some(i) => window.get(i + 1)?.0,
    };
    Some((at - from) as f64 / 1000.0)
}

/// The link's rate changes (wall clock ms, kbit/s) of `profile` on a path
/// made at `made_ms`.
fn steps(profile: &Profile, made_ms: u64) -> Vec<(u64, f64)> {
    let mut t = made_ms;
    profile
        .steps
        .iter()
        .map(|&(r, d)| {
            let at = t;
            t += d.as_millis() as u64;
            (at, r as f64 / 1000.0)
        })
        .collect()
}

/// The figures that come from the caller's sent-bytes series.
fn rate_figures(f: &mut Figures, sent: &[(u64, f64)], profile: &Profile, made_ms: u64) {
    let rates = kbps(sent);
    let (Some(start), Some(end)) = (rates.first().map(|r| r.0), rates.last().map(|r| r.0)) else {
        return;
    };
    let half = start + (end - start) / 2;
    f.sent_kbps = median(
        rates
            .iter()
            .filter(|(t, _)| *t >= half)
            .map(|r| r.1)
            .collect(),
    );
    let steps = steps(profile, made_ms);
    if steps.len() == 1 {
        let link = steps[0].1;
        f.link_kbps = Some(link);
        f.settle_s = settled(&rates, start, u64::MAX, 0.9 * link);
    }
    // A step down and back up: (high, low, high).
    if let [_, (down, low), (up, high), ..] = &steps[..] {
        if *high > *low {
            let before = median(
                rates
                    .iter()
                    .filter(|(t, _)| *t + 8000 >= *down && *t < *down)
                    .map(|r| r.1)
                    .collect(),
            );
            f.step_settle_s = settled(&rates, *down, *up, *low);
            f.step_recover_s = before.and_then(|b| {
                rates
                    .iter()
                    .find(|(t, r)| *t >= *up && *r >= 0.8 * b)
                    .map(|(t, _)| (t - up) as f64 / 1000.0)
            });
        }
    }
}

fn num(v: &Value, path: &str) -> Option<f64> {
    crate::report::at(v, path)
}

fn series(lines: &[Value], event: &str, path: &str) -> Series {
    lines
        .iter()
        .filter(|l| l["event"] == event)
        .filter_map(|l| Some((l["_seen_unix_ms"].as_u64()?, num(l, path)?)))
        .collect()
}

/// Peal's figures from the two sides' JSON lines.
fn peal_figures(alice: &[Value], bob: &[Value], profile: &Profile, made_ms: u64) -> Figures {
    let mut f = Figures {
        fps: rate_after_first(&series(bob, "media_stats", "received.video_frames")),
        ..Figures::default()
    };
    if let Some(st) = last_stats(bob) {
        f.corrupt = num(st, "received.corrupt_frames");
        f.freezes = num(st, "received.freeze_count");
        f.freeze_s = num(st, "received.total_freezes_duration_ms").map(|ms| ms / 1000.0);
        f.latency_p50 = num(st, "capture_to_decode_ms_p50");
        f.latency_p95 = num(st, "capture_to_decode_ms_p95");
        let n = |k: &str| num(st, &format!("received.{k}")).unwrap_or(0.0);
        let slots = n("audio_frames") + n("audio_recovered_frames") + n("audio_concealed_frames");
        f.audio_concealed_pct = (slots > 0.0).then(|| 100.0 * n("audio_concealed_frames") / slots);
    }
    rate_figures(
        &mut f,
        &series(alice, "media_stats", "sent.bytes"),
        profile,
        made_ms,
    );
    f
}

/// libwebrtc's figures from network.mjs's samples.
fn chromium_figures(run: &Value, profile: &Profile, made_ms: u64) -> (Figures, Value) {
    let samples = run["samples"].as_array().cloned().unwrap_or_default();
    let side = |s: &str, path: &str| -> Series {
        samples
            .iter()
            .filter_map(|x| Some((x[s]["unix_ms"].as_u64()?, num(&x[s], path)?)))
            .collect()
    };
    let mut f = Figures {
        fps: rate_after_first(&side("b", "video_in.frames_decoded")),
        ..Figures::default()
    };
    let mut extra = json!({});
    if let Some(last) = samples.last() {
        let b = &last["b"];
        f.freezes = num(b, "video_in.freeze_count");
        f.freeze_s = num(b, "video_in.total_freezes_duration_s");
        let (got, hid) = (num(b, "audio_in.samples"), num(b, "audio_in.concealed"));
        f.audio_concealed_pct = match (got, hid) {
            (Some(g), Some(h)) if g > 0.0 => Some(100.0 * h / g),
            _ => None,
        };
        let jb = match (
            num(b, "video_in.jitter_buffer_delay_s"),
            num(b, "video_in.jitter_buffer_emitted"),
        ) {
            (Some(d), Some(n)) if n > 0.0 => Some(1000.0 * d / n),
            _ => None,
        };
        let half_rtt = num(b, "rtt_s").map(|r| 500.0 * r);
        extra = json!({
            "video_jitter_buffer_ms_mean": jb,
            "rtt_ms": half_rtt.map(|h| 2.0 * h),
            "network_plus_jitter_buffer_ms": jb.zip(half_rtt).map(|(j, h)| j + h),
            "nacks": num(b, "video_in.nacks"), "plis": num(b, "video_in.plis"),
            "frames_dropped": num(b, "video_in.frames_dropped"),
            "width": num(b, "video_in.width"),
        });
    }
    let video = side("a", "video_out.bytes");
    let audio = side("a", "audio_out.bytes");
    let sent: Series = video
        .iter()
        .zip(audio.iter())
        .map(|(v, a)| (v.0, v.1 + a.1))
        .collect();
    rate_figures(&mut f, &sent, profile, made_ms);
    (f, extra)
}

fn figures_json(f: &Figures) -> Value {
    json!({
        "fps_decoded": f.fps, "corrupt_frames": f.corrupt, "freezes": f.freezes,
        "total_freezes_s": f.freeze_s, "capture_to_decode_ms_p50": f.latency_p50,
        "capture_to_decode_ms_p95": f.latency_p95, "audio_concealed_pct": f.audio_concealed_pct,
        "sent_kbps_median_second_half": f.sent_kbps, "link_kbps": f.link_kbps,
        "settle_s": f.settle_s, "step_settle_s": f.step_settle_s, "step_recover_s": f.step_recover_s,
    })
}

/// A 5 s loop of the camera-like picture as Y4M, for Chromium's fake camera.
fn write_y4m(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    use peal_media::synthetic::{Stamp, VideoPattern};
    use std::io::Write;
    let path = dir.join("synthetic-hd.y4m");
    let pattern = VideoPattern::new(640, 480)
        .map_err(|e| format!("{e:?}"))?
        .with_detail(true);
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut frame = Vec::new();
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    writeln!(out, "YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg").map_err(io)?;
    for i in 0..150u32 {
        pattern.render(Stamp::new(i, u64::from(i) * 33), &mut frame);
        out.write_all(b"FRAME\n").map_err(io)?;
        out.write_all(&frame).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(path)
}

fn chromium(path: &Path, secs: u64, y4m: Option<&std::path::Path>) -> Result<Value, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("chromium");
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "{}/node_modules is missing: run scripts/ensure-bench-deps.sh",
            dir.display()
        ));
    }
    let mut c = std::process::Command::new("node");
    c.current_dir(&dir).arg("network.mjs");
    c.args([path.namespace(Side::A), path.namespace(Side::B)]);
    c.arg(secs.to_string());
    if let Some(f) = y4m {
        c.arg(f);
    }
    let out = c
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!("the libwebrtc call failed ({})", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("network.mjs's output: {e}"))
}

fn shaped(profile: &str) -> Result<(Path, u64), String> {
    let netem = std::panic::catch_unwind(|| peal_tests::bin("peal-netem"))
        .map_err(|_| "peal-netem is not built".to_string())?;
    let made = peal_tests::across::unix_ms();
    let path = Path::create(profile, &netem).map_err(|e| {
        format!("a shaped path (root, iproute2 and ethtool; scripts/ensure-deps.sh): {e}")
    })?;
    Ok((path, made))
}

fn one_profile(name: &str, a: &Args, y4m: Option<&std::path::Path>) -> Result<Value, String> {
    let profile = Profile::parse(name).map_err(|e| e.to_string())?;
    let total: Duration = profile.steps.iter().map(|s| s.1).sum();
    let secs = if profile.steps.len() > 1 {
        total.as_secs() + 5
    } else {
        a.secs
    };
    let media = if a.source == "hd" {
        "synthetic-hd"
    } else {
        "synthetic"
    };
    let (path, made) = shaped(name)?;
    let called = std::thread::scope(|s| {
        s.spawn(|| {
            CallAcross {
                secs,
                media,
                bob_env: &[],
                stats_every: Some(1000),
            }
            .run(&path)
        })
        .join()
    })
    .map_err(|_| format!("{name}: the Peal call failed (see the panic above)"))?;
    drop(path);
    let ours = peal_figures(&called.alice, &called.bob, &profile, made);
    let (path, made) = shaped(name)?;
    let run = chromium(&path, secs, y4m)?;
    drop(path);
    let (theirs, extra) = chromium_figures(&run, &profile, made);
    eprintln!(
        "{name}: Peal {:.1} fps, {} freezes ({:.2} s), {} corrupt, sent {:.0} kbit/s; libwebrtc {:.1} fps, {} freezes ({:.2} s), sent {:.0} kbit/s",
        ours.fps.unwrap_or(-1.0), ours.freezes.unwrap_or(-1.0), ours.freeze_s.unwrap_or(-1.0),
        ours.corrupt.unwrap_or(-1.0), ours.sent_kbps.unwrap_or(-1.0),
        theirs.fps.unwrap_or(-1.0), theirs.freezes.unwrap_or(-1.0), theirs.freeze_s.unwrap_or(-1.0),
        theirs.sent_kbps.unwrap_or(-1.0),
    );
    Ok(json!({
        "profile": name, "secs": secs,
        "peal": figures_json(&ours),
        "libwebrtc": figures_json(&theirs),
        "peal_callee_stats": last_stats(&called.bob),
        "peal_caller_stats": last_stats(&called.alice),
        "libwebrtc_extra": extra,
        "browser": run["browser"],
    }))
}

fn rows(name: &str, r: &Value) -> Vec<Row> {
    let (o, t) = (&r["peal"], &r["libwebrtc"]);
    let g = |v: &Value, k: &str| v[k].as_f64();
    let secs = r["secs"].as_f64().unwrap_or(15.0);
    let per15 = |v: Option<f64>| v.map(|x| x * 15.0 / secs);
    let mut rows = vec![
        Row::new(
            format!("{name}: fps decoded at the callee"),
            g(o, "fps_decoded"),
            g(t, "fps_decoded"),
            "fps",
            Goal::RatioAtLeast(0.9),
        ),
        Row::new(
            format!("{name}: corrupt frames shown"),
            g(o, "corrupt_frames"),
            None,
            "frames",
            Goal::AtMost(0.0),
        ),
        Row::new(
            format!("{name}: total freeze time per 15 s"),
            per15(g(o, "total_freezes_s")),
            per15(g(t, "total_freezes_s")),
            "s",
            Goal::AtMostBaselinePlus(0.5),
        ),
        Row::new(
            format!("{name}: capture → decoded p95"),
            g(o, "capture_to_decode_ms_p95"),
            None,
            "ms",
            Goal::AtMost(400.0),
        ),
        Row::new(
            format!("{name}: audio concealed"),
            g(o, "audio_concealed_pct"),
            g(t, "audio_concealed_pct"),
            "%",
            Goal::None,
        ),
        Row::new(
            format!("{name}: sent by the caller (payload, 2nd half median)"),
            g(o, "sent_kbps_median_second_half"),
            g(t, "sent_kbps_median_second_half"),
            "kbit/s",
            Goal::None,
        ),
    ];
    if let Some(link) = g(o, "link_kbps") {
        let share = |v: &Value| g(v, "sent_kbps_median_second_half").map(|s| 100.0 * s / link);
        rows.push(Row::new(
            format!("{name}: sent, share of the {link:.0} kbit/s link"),
            share(o),
            share(t),
            "%",
            Goal::AtMost(90.0),
        ));
    }
    if o["settle_s"].is_number() || t["settle_s"].is_number() {
        rows.push(Row::new(
            format!("{name}: first media → staying ≤ 90% of the link"),
            g(o, "settle_s"),
            g(t, "settle_s"),
            "s",
            Goal::AtMost(5.0),
        ));
    }
    if o["step_recover_s"].is_number() || t["step_recover_s"].is_number() {
        rows.push(Row::new(
            format!("{name}: step down → staying under the new rate"),
            g(o, "step_settle_s"),
            g(t, "step_settle_s"),
            "s",
            Goal::None,
        ));
        rows.push(Row::new(
            format!("{name}: step up → 80% of the rate before"),
            g(o, "step_recover_s"),
            g(t, "step_recover_s"),
            "s",
            Goal::AtMost(15.0),
        ));
    }
    rows
}

pub fn run(a: &Args) -> Result<(), String> {
    if !["hd", "light"].contains(&a.source.as_str()) {
        return Err(format!("--source {}: hd or light", a.source));
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let y4m = if a.source == "hd" {
        Some(write_y4m(scratch.path())?)
    } else {
        None
    };
    let mut results = Vec::new();
    let mut table = Vec::new();
    for name in a.profiles.split(',').filter(|s| !s.is_empty()) {
        let r = one_profile(name, a, y4m.as_deref())?;
        table.extend(rows(name, &r));
        results.push(r);
    }
    let tiny = a.secs < 10;
    let figures = json!({
        "profiles": results,
        "command": format!("peal-bench network --profiles {} --secs {} --source {}", a.profiles, a.secs, a.source),
    });
    write("network", figures, &table, tiny)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte counter sampled each second whose rate is `kbps[i]` in second i.
    fn counter(start_ms: u64, kbps: &[f64]) -> Series {
        let mut bytes = 0.0;
        let mut s = vec![(start_ms, 0.0)];
        for (i, r) in kbps.iter().enumerate() {
            bytes += r * 1000.0 / 8.0;
            s.push((start_ms + 1000 * (i as u64 + 1), bytes));
        }
        s
    }

    #[test]
    fn a_sender_that_falls_under_a_narrow_link_settles_when_it_last_crossed() {
        let p = Profile::parse("rate=600kbit").unwrap();
        let mut f = Figures::default();
        // 3 s over 90% of 600, then under for good.
        let sent = counter(10_000, &[900.0, 700.0, 560.0, 500.0, 400.0, 450.0, 420.0]);
        rate_figures(&mut f, &sent, &p, 0);
        assert_eq!(f.settle_s, Some(3.0));
        assert_eq!(f.link_kbps, Some(600.0));
        assert_eq!(f.sent_kbps, Some(450.0));
    }

    #[test]
    fn a_sender_that_never_goes_under_has_not_settled() {
        let p = Profile::parse("rate=600kbit").unwrap();
        let mut f = Figures::default();
        rate_figures(&mut f, &counter(0, &[700.0, 800.0, 700.0]), &p, 0);
        assert_eq!(f.settle_s, None);
    }

    #[test]
    fn after_a_step_down_and_up_the_settle_and_recovery_times_count_from_each_step() {
        let p = Profile::parse("steps=2000kbit/10s+500kbit/10s+2000kbit/10s").unwrap();
        let mut f = Figures::default();
        let mut r = vec![1500.0; 10]; // 0-10 s: 1.5 Mbit/s
        r.extend([
            1500.0, 900.0, 450.0, 400.0, 420.0, 400.0, 400.0, 430.0, 400.0, 410.0,
        ]);
        r.extend([
            500.0, 700.0, 900.0, 1100.0, 1250.0, 1400.0, 1500.0, 1500.0, 1500.0, 1500.0,
        ]);
        rate_figures(&mut f, &counter(0, &r), &p, 0);
        // The rate at 12 s (sample at 12 s = second 11..12) is 900: over.
        // Under for good from the sample at 13 s: 3 s after the step.
        assert_eq!(f.step_settle_s, Some(3.0));
        // 80% of 1500 = 1200: the sample at 25 s carries 1250.
        assert_eq!(f.step_recover_s, Some(5.0));
    }

    #[test]
    fn frames_per_second_start_a_second_after_the_first_frame() {
        // Nothing for 2 s, then 30 fps.
        let s: Series = (0..10)
            .map(|i| (i * 1000, if i < 2 { 0.0 } else { 30.0 * (i - 2) as f64 }))
            .collect();
        assert_eq!(rate_after_first(&s), Some(30.0));
        assert_eq!(rate_after_first(&[(0, 0.0), (1000, 0.0)]), None);
    }
}
