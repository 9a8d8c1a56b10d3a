//! Every committed fuzz input of the peal-media targets, replayed on stable
//! through the very code the fuzz targets run (`crates/peal-fuzz/src/media.rs`):
//! the seeds under `crates/peal-fuzz/seeds/<target>/` and each crasher the
//! fuzzers found under `crates/peal-fuzz/regressions/<target>/`.

#[path = "../../peal-fuzz/src/media.rs"]
mod media;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Panics anywhere in the process, in webrtc-rs' own tasks too (a panicking
/// tokio task does not fail the test that spawned it).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Every file of `target`'s seeds and regressions, sorted by path.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../peal-fuzz");
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.expect("a directory entry").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("a readable input");
                out.push((path, data));
            }
        }
    }
    out.sort();
    out
}

/// Runs every input of `target`; fails naming each one that panics.
fn replay(target: &str, one_input: fn(&[u8])) {
    count_panics();
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no committed inputs for {target}");
    let mut failed = Vec::new();
    for (path, data) in &inputs {
        let before = PANICS.load(Ordering::SeqCst);
        let unwound = std::panic::catch_unwind(|| one_input(data)).is_err();
        if unwound || PANICS.load(Ordering::SeqCst) != before {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} fails on {failed:#?}");
}

#[test]
fn vp8_assembler_inputs_never_panic() {
    replay("vp8_assembler", media::vp8_assembler);
}

/// Every input that builds peer connections, one at a time: the fuzz code
/// checks that no link outlives its input.
#[test]
fn sdp_inputs_never_panic_and_close_their_link() {
    replay("sdp_answer", media::sdp_answer);
}
