//! Halving an I420 picture (each 2x2 block averaged), for the quality
//! ladder's half size ([`crate::rate::Layer::Half`]) on a source that can't
//! capture smaller itself (a camera). Pure.

/// The bytes of a `w`x`h` I420 picture.
pub fn i420_len(w: u32, h: u32) -> usize {
    let (w, h) = (w as usize, h as usize);
    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
}

/// Writes `src` (`w`x`h`, both multiples of 4 so the chroma planes halve
/// evenly too) at half size into `dst`; `false` (and `dst` untouched) when
/// it can't.
pub fn halve_i420(src: &[u8], w: u32, h: u32, dst: &mut Vec<u8>) -> bool {
    if !w.is_multiple_of(4) || !h.is_multiple_of(4) || src.len() != i420_len(w, h) {
        return false;
    }
    let (w, h) = (w as usize, h as usize);
    dst.clear();
    dst.reserve(i420_len(w as u32 / 2, h as u32 / 2));
    let (y, uv) = src.split_at(w * h);
    let (u, v) = uv.split_at((w / 2) * (h / 2));
    halve_plane(y, w, h, dst);
    halve_plane(u, w / 2, h / 2, dst);
    halve_plane(v, w / 2, h / 2, dst);
    true
}

/// Appends one plane (even sides) at half size.
fn halve_plane(p: &[u8], w: usize, h: usize, out: &mut Vec<u8>) {
    for y in 0..h / 2 {
        let (r0, r1) = (&p[2 * y * w..][..w], &p[(2 * y + 1) * w..][..w]);
        for x in 0..w / 2 {
            let sum = u16::from(r0[2 * x])
                + u16::from(r0[2 * x + 1])
                + u16::from(r1[2 * x])
                + u16::from(r1[2 * x + 1]);
            out.push(((sum + 2) / 4) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_halves_block_by_block_and_a_wrong_size_is_refused() {
        // 4x4: Y is four 2x2 blocks; U and V are 2x2 each, one block.
        #[rustfmt::skip]
        let src = [
            10, 20, 100, 100,
            30, 40, 100, 101,
            0, 0, 255, 255,
            0, 4, 255, 255,
            7, 9, 1, 3, // U
            200, 202, 0, 0, // V
        ];
        let mut out = vec![1, 2, 3];
        assert!(halve_i420(&src, 4, 4, &mut out));
        assert_eq!(out, [25, 100, 1, 255, 5, 101]);
        let src = vec![50u8; i420_len(640, 480)];
        assert!(halve_i420(&src, 640, 480, &mut out));
        assert_eq!(out.len(), i420_len(320, 240));
        assert!(out.iter().all(|&b| b == 50));
        let before = out.clone();
        assert!(!halve_i420(&src[1..], 640, 480, &mut out));
        assert!(!halve_i420(&src, 641, 480, &mut out));
        assert_eq!(out, before);
    }
}
