//! Every committed fuzz input of the peal-proto targets, replayed on stable
//! through the very code the fuzz targets run (`crates/peal-fuzz/src/proto.rs`):
//! the seeds under `crates/peal-fuzz/seeds/<target>/` and each crasher the
//! fuzzers found under `crates/peal-fuzz/regressions/<target>/`.

#[path = "../../peal-fuzz/src/proto.rs"]
mod proto;

use peal_proto::wire::{ClientFrame, ServerFrame};
use std::path::PathBuf;

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
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no committed inputs for {target}");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| std::panic::catch_unwind(|| one_input(data)).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target} fails on {failed:#?}");
}

#[test]
fn client_frame_inputs_never_panic() {
    replay("client_frame", proto::client_frame);
}

#[test]
fn request_body_inputs_never_panic() {
    replay("request_bodies", proto::request_bodies);
}

#[test]
fn call_state_machine_inputs_keep_every_invariant() {
    replay("call_state_machine", proto::call_state_machine);
}

/// The seeds stay what they are meant to be as the protocol grows: each
/// frame seed is a frame one side accepts, each body seed a body.
#[test]
fn every_seed_still_decodes() {
    for (path, data) in inputs("client_frame") {
        if path.components().any(|c| c.as_os_str() == "seeds") {
            let client = serde_json::from_slice::<ClientFrame>(&data).is_ok();
            let server = serde_json::from_slice::<ServerFrame>(&data).is_ok();
            assert!(client || server, "{} decodes as no frame", path.display());
        }
    }
    for (path, data) in inputs("request_bodies") {
        if path.components().any(|c| c.as_os_str() == "seeds") {
            let body = data.get(1..).unwrap_or_default();
            assert!(
                serde_json::from_slice::<serde_json::Value>(body).is_ok(),
                "{} is not JSON",
                path.display()
            );
        }
    }
}
