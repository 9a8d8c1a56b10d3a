//! The camera where there is no backend yet (Windows, macOS): no cameras,
//! and opening one is a clear `NoDevice` error, so a video call sends the
//! test pattern and the app says why, as on a Linux machine without one.

use super::no_device;
use crate::MediaError;

pub(super) fn names() -> Vec<String> {
    Vec::new()
}

/// Never made: [`Capture::open`] always refuses.
pub(super) enum Capture {}

impl Capture {
    pub(super) fn open(
        _index: usize,
        _width: u32,
        _height: u32,
    ) -> Result<(Capture, u32, u32), MediaError> {
        Err(no_device(
            "camera",
            format!("no camera support on {} yet", std::env::consts::OS),
        ))
    }

    pub(super) fn next_i420(
        &mut self,
        _w: usize,
        _h: usize,
        _out: &mut Vec<u8>,
    ) -> Result<(), MediaError> {
        match *self {}
    }
}
