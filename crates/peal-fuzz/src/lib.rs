//! What each fuzz target does with one input, as plain stable Rust.
//!
//! The targets in `fuzz_targets/` are one line each, calling these. The same
//! files are compiled into the stable regression tests
//! (`crates/peal-proto/tests/fuzz_regressions.rs`,
//! `crates/peal-media/tests/fuzz_regressions.rs`), which replay every file
//! under `seeds/<target>/` and `regressions/<target>/` through the same code.

pub mod media;
pub mod proto;
