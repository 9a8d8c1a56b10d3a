#!/usr/bin/env python3
"""Writes icons/icon.ico from the PNG icons: an ICO whose images are the
PNGs themselves (Windows reads PNG entries since Vista), so no image library
is needed. Windows takes the .exe's icon from it (tauri-build embeds it) and
the installer shows it. Run again when the PNGs change:
    python3 scripts/make-ico.py
"""
import pathlib
import struct

ICONS = pathlib.Path(__file__).resolve().parent.parent / "icons"
SIZES = ["32x32.png", "128x128.png"]


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise SystemExit("not a PNG")
    return struct.unpack(">II", data[16:24])


def main() -> None:
    images = [(ICONS / name).read_bytes() for name in SIZES]
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for data in images:
        w, h = png_size(data)
        # A size of 256 is written as 0; PNG entries carry 32 bits a pixel.
        out += struct.pack("<BBBBHHII", w % 256, h % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    out += b"".join(images)
    (ICONS / "icon.ico").write_bytes(out)


if __name__ == "__main__":
    main()
