//! The camera on Linux: V4L2 capture nodes giving YUYV, converted to I420.

use v4l::io::traits::CaptureStream;
use v4l::video::Capture as _;

use super::{no_device, yuyv_to_i420};
use crate::MediaError;

/// The capture-capable nodes' cards' names, in /dev/video order (a webcam
/// also makes a metadata node, which can't give pictures).
pub(super) fn names() -> Vec<String> {
    capture_nodes().into_iter().map(|(_, name)| name).collect()
}

fn capture_nodes() -> Vec<(std::path::PathBuf, String)> {
    let mut nodes: Vec<_> = v4l::context::enum_devices()
        .into_iter()
        .filter_map(|node| {
            let caps = v4l::Device::with_path(node.path())
                .ok()?
                .query_caps()
                .ok()?;
            can_capture(caps.capabilities).then(|| (node.path().to_owned(), caps.card))
        })
        .collect();
    nodes.sort_by_key(|(path, _)| video_index(path));
    nodes
}

fn video_index(path: &std::path::Path) -> u32 {
    path.to_string_lossy()
        .trim_start_matches("/dev/video")
        .parse()
        .unwrap_or(u32::MAX)
}

/// Whether a node with these (device) capabilities gives pictures.
fn can_capture(caps: v4l::capability::Flags) -> bool {
    caps.intersects(
        v4l::capability::Flags::VIDEO_CAPTURE | v4l::capability::Flags::VIDEO_CAPTURE_MPLANE,
    ) && caps.contains(v4l::capability::Flags::STREAMING)
}

/// An open V4L2 stream.
pub(super) struct Capture {
    stream: v4l::io::mmap::Stream<'static>,
}

impl Capture {
    /// Opens the `index`th of [`names`] at (about) `width`x`height`; the
    /// stream and the size the driver chose.
    pub(super) fn open(
        index: usize,
        width: u32,
        height: u32,
    ) -> Result<(Capture, u32, u32), MediaError> {
        let nodes = capture_nodes();
        let Some((path, _)) = nodes.get(index) else {
            return Err(no_device("camera", "no capture device in /dev/video*"));
        };
        let dev = v4l::Device::with_path(path)
            .map_err(|e| no_device("camera", format!("{}: {e}", path.display())))?;
        let mut fmt = dev
            .format()
            .map_err(|e| no_device("camera", format!("format: {e}")))?;
        fmt.width = width;
        fmt.height = height;
        fmt.fourcc = v4l::FourCC::new(b"YUYV");
        let fmt = dev
            .set_format(&fmt)
            .map_err(|e| no_device("camera", format!("set format: {e}")))?;
        if fmt.fourcc != v4l::FourCC::new(b"YUYV") || fmt.width % 2 == 1 || fmt.height % 2 == 1 {
            return Err(no_device(
                "camera",
                format!(
                    "no YUYV capture (offers {} {}x{})",
                    fmt.fourcc, fmt.width, fmt.height
                ),
            ));
        }
        let stream = v4l::io::mmap::Stream::with_buffers(&dev, v4l::buffer::Type::VideoCapture, 4)
            .map_err(|e| no_device("camera", format!("stream: {e}")))?;
        Ok((Capture { stream }, fmt.width, fmt.height))
    }

    /// Blocks for the next `w`x`h` frame and writes it as I420 into `out`.
    pub(super) fn next_i420(
        &mut self,
        w: usize,
        h: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), MediaError> {
        let (buf, _) = self
            .stream
            .next()
            .map_err(|e| no_device("camera", format!("capture: {e}")))?;
        yuyv_to_i420(buf, w, h, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nodes_that_stream_pictures_are_cameras() {
        use v4l::capability::Flags;
        assert!(can_capture(Flags::VIDEO_CAPTURE | Flags::STREAMING));
        assert!(can_capture(Flags::VIDEO_CAPTURE_MPLANE | Flags::STREAMING));
        // A webcam's second node carries metadata, not pictures.
        assert!(!can_capture(Flags::META_CAPTURE | Flags::STREAMING));
        assert!(!can_capture(Flags::VIDEO_OUTPUT | Flags::STREAMING));
        assert!(!can_capture(Flags::VIDEO_CAPTURE | Flags::READ_WRITE));
    }
}
