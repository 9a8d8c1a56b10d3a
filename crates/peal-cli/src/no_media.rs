//! `peal` built without the `media` feature (no codecs, no devices): the
//! same API as `media.rs`, where signaling works as ever and anything that
//! needs media is refused with `media_unavailable` (exit 6) before anyone
//! is rung or a call is taken.

use crate::{print_final, usage, Failure, MediaMode, MediaOpts};
use peal_client::{CallInfo, PealClient};

fn built_without(what: &str) -> Failure {
    Failure {
        code: "media_unavailable".into(),
        message: format!(
            "this peal was built without media (cargo's `media` feature), so {what}; signaling works with --media none"
        ),
        exit: 6,
    }
}

/// Calls without media: only `--media none` gets this far.
pub struct Media;

impl Media {
    pub fn new(_opts: MediaOpts) -> Self {
        Media
    }

    pub async fn tick(&mut self) {
        std::future::pending().await
    }

    /// Refuses any media but `--media none`, and device names, before signing in.
    pub fn check(opts: &MediaOpts) -> Result<(), Failure> {
        if opts.microphone.is_some() || opts.speaker.is_some() || opts.camera.is_some() {
            return Err(usage(
                "--microphone, --speaker and --camera choose devices for --media devices",
            ));
        }
        if opts.media != MediaMode::None {
            return Err(built_without("it can't send or receive call media"));
        }
        if opts.stats || opts.stats_every.is_some() {
            return Err(built_without("it has no media stats"));
        }
        Ok(())
    }

    pub fn probe(&self, _video: bool) -> Result<(), Failure> {
        Ok(())
    }

    pub async fn ringing(&mut self, _client: &PealClient, _call: &CallInfo) -> Result<(), Failure> {
        Ok(())
    }

    pub async fn join(&mut self, _client: &PealClient, _call: &CallInfo) -> Result<(), Failure> {
        Ok(())
    }

    pub fn accepted(&mut self) {}

    pub fn print_stats(&self) {}

    pub async fn finish(&mut self, call: &CallInfo) {
        print_final(call);
    }
}

pub fn devices() -> Result<(), Failure> {
    Err(built_without("it lists no devices"))
}

pub async fn echo_bot(_client: &PealClient, _answer_after: u64) -> Result<(), Failure> {
    Err(built_without("it can't echo media"))
}
