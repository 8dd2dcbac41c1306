"""Real, valid PNG images for simulated image generation, built with zlib + struct only.

The gateway stores or forwards generated images, so a placeholder string is not enough: clients
decode the data URL. Each image is a small solid-colour RGB PNG whose size follows
``image_config.aspect_ratio`` (1:1 → 64x64, otherwise the long side is 96 px: 16:9 → 96x54,
9:16 → 54x96, 4:3 → 96x72). ``x-sim-image-bytes: N`` inserts a private ancillary chunk
(``siMp``, ignored by every decoder) so the raw PNG is about N bytes — the way to produce
responses over 6 MB (the Lambda payload limit). Data URLs are cached: the encoding of a 7 MB image
is the expensive part and benchmarks repeat the same request.
"""

from __future__ import annotations

import base64
import struct
import zlib
from functools import lru_cache

__all__ = ["PALETTE", "image_data_url", "image_size", "png_bytes"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PAD_TYPE = b"siMp"  # ancillary, private, safe-to-copy
PALETTE: tuple[tuple[int, int, int], ...] = (
    (231, 76, 60),
    (46, 204, 113),
    (52, 152, 219),
    (241, 196, 15),
    (155, 89, 182),
    (26, 188, 156),
    (230, 126, 34),
    (52, 73, 94),
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def image_size(aspect_ratio: object) -> tuple[int, int]:
    """(width, height) for an ``"W:H"`` aspect ratio; 64x64 when absent or malformed."""
    if not isinstance(aspect_ratio, str):
        return 64, 64
    left, sep, right = aspect_ratio.partition(":")
    try:
        w, h = float(left), float(right)
    except ValueError:
        return 64, 64
    if not sep or w <= 0 or h <= 0 or w == h:
        return 64, 64
    if w > h:
        return 96, max(1, round(96 * h / w))
    return max(1, round(96 * w / h)), 96


def png_bytes(width: int, height: int, rgb: tuple[int, int, int], target_bytes: int | None = None) -> bytes:
    """A solid-colour 8-bit RGB PNG, padded to about ``target_bytes`` when given."""
    row = b"\x00" + bytes(rgb) * width  # filter type 0 per scanline
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    head = PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(row * height, 9))
    tail = _chunk(b"IEND", b"")
    if target_bytes is not None:
        pad = target_bytes - len(head) - len(tail) - 12
        if pad > 0:
            head += _chunk(_PAD_TYPE, b"\x00" * pad)
    return head + tail


@lru_cache(maxsize=16)
def image_data_url(width: int, height: int, colour: int, target_bytes: int | None = None) -> str:
    """``data:image/png;base64,...`` for a palette colour index (cached; see module docstring)."""
    png = png_bytes(width, height, PALETTE[colour % len(PALETTE)], target_bytes)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
