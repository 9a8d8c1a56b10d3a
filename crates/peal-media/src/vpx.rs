//! VP8 encode and decode with the system libvpx: the crate's only unsafe code.
//!
//! The safe libvpx wrappers on crates.io (vpx-rs) need libvpx ≥ 1.13 while
//! Debian 12 ships 1.12, and vpx-encode has no decoder and no way to force a
//! keyframe (which a mesh needs when a peer joins). So this module binds the
//! dozen calls it needs and exposes two safe types. Every pointer it hands to
//! libvpx lives for the call; every context is destroyed exactly once (Drop).
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys::vp8e_enc_control_id::{self, VP8E_SET_CPUUSED, VP8E_SET_MAX_INTRA_BITRATE_PCT};
use vpx_sys::{
    vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_dec_cfg_t, vpx_codec_enc_cfg_t,
    vpx_codec_err_t, vpx_codec_iter_t, vpx_image_t, vpx_img_fmt, vpx_rc_mode,
};

/// A keyframe's size cap, in percent of one frame's share of the target.
const MAX_INTRA_BITRATE_PCT: c_int = 300;

/// A libvpx call failed; `what` names the call.
#[derive(Debug, thiserror::Error)]
#[error("libvpx {what} failed ({code:?})")]
pub struct VpxError {
    pub what: &'static str,
    pub code: vpx_codec_err_t,
}

fn check(what: &'static str, code: vpx_codec_err_t) -> Result<(), VpxError> {
    if code == vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(VpxError { what, code })
    }
}

/// Encoder settings for real-time VP8.
#[derive(Clone, Copy, Debug)]
pub struct EncoderConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

/// One encoded VP8 frame.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// A real-time VP8 encoder (one thread, no lag, CBR, error resilient).
pub struct Vp8Encoder {
    ctx: Box<vpx_codec_ctx_t>,
    cfg: EncoderConfig,
    /// libvpx's view of the settings, kept to change the bitrate on the fly.
    enc_cfg: vpx_codec_enc_cfg_t,
    pts: i64,
}

// SAFETY: the context is owned by this value alone and libvpx contexts may be
// used from any thread, one at a time (`&mut self` on every call).
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    pub fn new(cfg: EncoderConfig) -> Result<Self, VpxError> {
        if cfg.width == 0 || cfg.height == 0 || cfg.width % 2 == 1 || cfg.height % 2 == 1 {
            return Err(VpxError {
                what: "config (even, non-zero size)",
                code: vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
            });
        }
        // SAFETY: zeroed C structs are valid inputs for the *_default/init calls,
        // which fill them in; the interface pointer is a static in libvpx.
        unsafe {
            let iface = vpx_sys::vpx_codec_vp8_cx();
            let mut c = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed();
            check(
                "enc_config_default",
                vpx_sys::vpx_codec_enc_config_default(iface, c.as_mut_ptr(), 0),
            )?;
            let mut c = c.assume_init();
            c.g_w = cfg.width;
            c.g_h = cfg.height;
            c.g_timebase.num = 1;
            c.g_timebase.den = cfg.fps.max(1) as c_int;
            c.rc_target_bitrate = cfg.bitrate_kbps;
            c.rc_end_usage = vpx_rc_mode::VPX_CBR;
            c.g_threads = 1;
            c.g_lag_in_frames = 0;
            c.g_error_resilient = 1;
            c.rc_min_quantizer = 4;
            // libwebrtc's VP8 ceiling: at a low estimate a coarser picture
            // beats skipped frames (at 48, `lossy1m`'s camera-like picture
            // at ~430 kbit/s came out at 23 fps, in stalls).
            c.rc_max_quantizer = 56;
            c.rc_undershoot_pct = 95;
            // Over the target by at most 15% (libwebrtc's value): the
            // target is what the path's estimate says it takes.
            c.rc_overshoot_pct = 15;
            // Skip a frame rather than overshoot when the buffer runs dry
            // (libwebrtc's threshold): a late frame helps nobody.
            c.rc_dropframe_thresh = 30;
            c.rc_buf_sz = 1000;
            c.rc_buf_initial_sz = 500;
            c.rc_buf_optimal_sz = 600;
            // Receivers ask for keyframes (RTCP PLI/FIR, and over signaling),
            // so a periodic one is only the last resort for a receiver whose
            // every request was lost. Each costs 3 frames' worth of the
            // target, paid for with skipped frames after it; every 3 s that
            // was 5 stalls per 15 s on a 1 Mbit/s path.
            c.kf_max_dist = cfg.fps.max(1) * 10;
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed());
            check(
                "enc_init",
                vpx_sys::vpx_codec_enc_init_ver(
                    ctx.as_mut_ptr(),
                    iface,
                    &c,
                    0,
                    vpx_sys::VPX_ENCODER_ABI_VERSION as c_int,
                ),
            )?;
            let mut enc = Vp8Encoder {
                ctx: ctx.assume_init(),
                cfg,
                enc_cfg: c,
                pts: 0,
            };
            // Speed over quality: -6 is what real-time VP8 senders use on one core.
            enc.control("control(cpuused)", VP8E_SET_CPUUSED, -6)?;
            // A keyframe at most 3 frames' worth of the target (libwebrtc's
            // floor for this): an uncapped one is 10-20 frames' worth, a
            // burst that overflows a shallow router queue, is lost, is asked
            // for again, and is lost again.
            enc.control(
                "control(max intra bitrate)",
                VP8E_SET_MAX_INTRA_BITRATE_PCT,
                MAX_INTRA_BITRATE_PCT,
            )?;
            Ok(enc)
        }
    }

    fn control(
        &mut self,
        what: &'static str,
        id: vp8e_enc_control_id,
        v: c_int,
    ) -> Result<(), VpxError> {
        // SAFETY: `ctx` is an initialised encoder; every control used here
        // takes one int.
        check(what, unsafe {
            vpx_sys::vpx_codec_control_(&mut *self.ctx, id as c_int, v)
        })
    }

    pub fn config(&self) -> EncoderConfig {
        self.cfg
    }

    /// Changes the target bitrate from the next frame on (no keyframe).
    pub fn set_bitrate_kbps(&mut self, kbps: u32) -> Result<(), VpxError> {
        if kbps == self.cfg.bitrate_kbps {
            return Ok(());
        }
        self.enc_cfg.rc_target_bitrate = kbps;
        // SAFETY: the context was initialised in `new`; libvpx copies the
        // configuration during the call.
        check("enc_config_set", unsafe {
            vpx_sys::vpx_codec_enc_config_set(&mut *self.ctx, &self.enc_cfg)
        })?;
        self.cfg.bitrate_kbps = kbps;
        Ok(())
    }

    /// Encodes one I420 frame (`width*height*3/2` bytes); `keyframe` forces one.
    pub fn encode(&mut self, i420: &[u8], keyframe: bool) -> Result<Vec<EncodedFrame>, VpxError> {
        self.encode_for(i420, keyframe, 1)
    }

    /// As [`Self::encode`], for a frame shown for `ticks` frame intervals
    /// (2 when every other frame is skipped), so rate control stays right.
    pub fn encode_for(
        &mut self,
        i420: &[u8],
        keyframe: bool,
        ticks: u32,
    ) -> Result<Vec<EncodedFrame>, VpxError> {
        let ticks = ticks.max(1);
        let (w, h) = (self.cfg.width, self.cfg.height);
        let need = (w * h + 2 * (w / 2) * (h / 2)) as usize;
        if i420.len() != need {
            return Err(VpxError {
                what: "encode (I420 buffer size)",
                code: vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
            });
        }
        // A C `long`: 32 bits on Windows, 64 on Linux and macOS.
        let flags: vpx_sys::vpx_enc_frame_flags_t = if keyframe {
            vpx_sys::VPX_EFLAG_FORCE_KF as vpx_sys::vpx_enc_frame_flags_t
        } else {
            0
        };
        let mut out = Vec::new();
        // SAFETY: `img` only points into `i420`, which outlives the encode call
        // (libvpx copies the picture before returning); packets are copied out
        // before the next call on the context.
        unsafe {
            let mut img = MaybeUninit::<vpx_image_t>::zeroed();
            let wrapped = vpx_sys::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx_img_fmt::VPX_IMG_FMT_I420,
                w as c_uint,
                h as c_uint,
                1,
                i420.as_ptr() as *mut u8,
            );
            if wrapped.is_null() {
                return Err(VpxError {
                    what: "img_wrap",
                    code: vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
                });
            }
            check(
                "encode",
                vpx_sys::vpx_codec_encode(
                    &mut *self.ctx,
                    wrapped,
                    self.pts,
                    c_ulong::from(ticks),
                    flags,
                    vpx_sys::VPX_DL_REALTIME as c_ulong,
                ),
            )?;
            self.pts += i64::from(ticks);
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                let pkt = vpx_sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let f = (*pkt).data.frame;
                let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                out.push(EncodedFrame {
                    data,
                    keyframe: f.flags & vpx_sys::VPX_FRAME_IS_KEY != 0,
                });
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once here.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A decoded picture's luma plane (what the pattern check and a renderer need
/// first) plus the chroma planes, tightly packed I420.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420Frame {
    pub width: u32,
    pub height: u32,
    /// `width*height` luma, then the two `width/2*height/2` chroma planes.
    pub data: Vec<u8>,
}

impl I420Frame {
    pub fn y(&self, x: u32, y: u32) -> u8 {
        self.data
            .get((y * self.width + x) as usize)
            .copied()
            .unwrap_or(0)
    }
}

/// A VP8 decoder.
pub struct Vp8Decoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: as for the encoder.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    pub fn new() -> Result<Self, VpxError> {
        // SAFETY: as in `Vp8Encoder::new`.
        unsafe {
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed());
            let cfg = vpx_codec_dec_cfg_t {
                threads: 1,
                w: 0,
                h: 0,
            };
            check(
                "dec_init",
                vpx_sys::vpx_codec_dec_init_ver(
                    ctx.as_mut_ptr(),
                    vpx_sys::vpx_codec_vp8_dx(),
                    &cfg,
                    0,
                    vpx_sys::VPX_DECODER_ABI_VERSION as c_int,
                ),
            )?;
            Ok(Vp8Decoder {
                ctx: ctx.assume_init(),
            })
        }
    }

    /// Decodes one frame's bitstream; garbage is an error, never a crash.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<I420Frame>, VpxError> {
        if data.is_empty() || data.len() > u32::MAX as usize {
            return Err(VpxError {
                what: "decode (empty frame)",
                code: vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
            });
        }
        let mut out = Vec::new();
        // SAFETY: `data` outlives the call; images returned by get_frame stay
        // valid until the next decode on this context and are copied out first;
        // plane pointers and strides come from libvpx for the image's own size.
        unsafe {
            check(
                "decode",
                vpx_sys::vpx_codec_decode(
                    &mut *self.ctx,
                    data.as_ptr(),
                    data.len() as c_uint,
                    ptr::null_mut(),
                    0,
                ),
            )?;
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                let img = vpx_sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() {
                    break;
                }
                let img = &*img;
                if img.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
                    continue;
                }
                let (w, h) = (img.d_w, img.d_h);
                let mut buf = Vec::with_capacity((w * h * 3 / 2) as usize);
                for (plane, (pw, ph)) in [(w, h), (w / 2, h / 2), (w / 2, h / 2)]
                    .into_iter()
                    .enumerate()
                {
                    let stride = img.stride[plane] as usize;
                    let base = img.planes[plane];
                    for row in 0..ph as usize {
                        let line = std::slice::from_raw_parts(base.add(row * stride), pw as usize);
                        buf.extend_from_slice(line);
                    }
                }
                out.push(I420Frame {
                    width: w,
                    height: h,
                    data: buf,
                });
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once here.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_round_trip_keeps_a_flat_picture() {
        let cfg = EncoderConfig {
            width: 64,
            height: 48,
            fps: 30,
            bitrate_kbps: 300,
        };
        let mut enc = Vp8Encoder::new(cfg).unwrap();
        let mut dec = Vp8Decoder::new().unwrap();
        let mut pic = vec![128u8; 64 * 48 * 3 / 2];
        pic[..64 * 48].fill(200);
        let frames = enc.encode(&pic, true).unwrap();
        assert!(frames[0].keyframe);
        let out = dec.decode(&frames[0].data).unwrap();
        assert_eq!((out[0].width, out[0].height), (64, 48));
        assert!((out[0].y(10, 10) as i32 - 200).abs() < 8);
        // What a renderer that decodes itself reads from the bitstream.
        assert_eq!(
            crate::assemble::keyframe_size(&frames[0].data),
            Some((64, 48))
        );
        let delta = enc.encode(&pic, false).unwrap();
        assert!(!delta[0].keyframe);
        assert_eq!(crate::assemble::keyframe_size(&delta[0].data), None);
        assert_eq!(
            crate::assemble::keyframe_size(&[0x00, 1, 2]),
            None,
            "too short"
        );
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_crash() {
        let mut dec = Vp8Decoder::new().unwrap();
        assert!(dec.decode(&[0xff; 40]).is_err());
        assert!(dec.decode(&[]).is_err());
    }

    #[test]
    fn odd_sizes_and_short_buffers_are_refused() {
        assert!(Vp8Encoder::new(EncoderConfig {
            width: 63,
            height: 48,
            fps: 30,
            bitrate_kbps: 300
        })
        .is_err());
        let mut enc = Vp8Encoder::new(EncoderConfig {
            width: 64,
            height: 48,
            fps: 30,
            bitrate_kbps: 300,
        })
        .unwrap();
        assert!(enc.encode(&[0; 10], false).is_err());
    }
}
