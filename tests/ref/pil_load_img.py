#!/usr/bin/env python3
"""Generates the image test inputs and their Pillow reference outputs.

Regenerate (from the repository root, with numpy and Pillow installed):
    python3 tests/ref/pil_load_img.py

Writes
  tests/data/*.png, *.jpg          small synthetic test images (deterministic)
  tests/data/ref/<img>.<interp>.<H>x<W>.rgb
                                   what keras.utils.load_img(path,
                                   target_size=(H, W), interpolation=interp)
                                   returns, as raw uint8 RGB, HWC, C order
  examples/data/example.jpg        the example photo-like image (320 x 240)

The reference is keras.utils.load_img's own logic (open, convert('RGB') when
the mode is not RGB, resize((W, H), resample) when the size differs), written
out here so that Keras is not needed. The C test derives the caffe-preprocessed
floats from these bytes with keras' formula (BGR, minus the ImageNet means).
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
REF = os.path.join(DATA, "ref")

RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}


def keras_load_img(path, h, w, interpolation):
    with open(path, "rb") as f:
        img = Image.open(io.BytesIO(f.read()))
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (w, h):
            img = img.resize((w, h), RESAMPLE[interpolation])
        return np.asarray(img, dtype=np.uint8)


def scene(w, h, seed, noise=12.0):
    """A smooth scene with sharp edges and some noise, uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    img[(x - w / 3) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 4) ** 2] = [250, 20, 30]
    img[(x > 0.6 * w) & (x < 0.8 * w) & (y > 0.2 * h)] = [10, 240, 60]
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png16(path, arr):
    """A 16-bit PNG (colour type 0 or 2) from a uint16 HxW or HxWx3 array."""
    h, w = arr.shape[:2]
    ctype = 2 if arr.ndim == 3 else 0
    raw = b"".join(b"\0" + arr[i].astype(">u2").tobytes() for i in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(png_chunk(b"IEND", b""))


def write_png_palette(path, w, h, depth, plte, indices, trns=None):
    """A palette PNG (colour type 3) whose pixels may index past its PLTE."""
    per_byte = 8 // depth
    rows = []
    for y in range(h):
        row = bytearray()
        for x0 in range(0, w, per_byte):
            v = 0
            for k in range(per_byte):
                v = (v << depth) | (int(indices[y][x0 + k]) if x0 + k < w else 0)
            row.append(v)
        rows.append(b"\0" + bytes(row))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 3, 0, 0, 0)))
        f.write(png_chunk(b"PLTE", bytes(plte)))
        if trns is not None:
            f.write(png_chunk(b"tRNS", bytes(trns)))
        f.write(png_chunk(b"IDAT", zlib.compress(b"".join(rows), 9)))
        f.write(png_chunk(b"IEND", b""))


def make_inputs():
    os.makedirs(REF, exist_ok=True)
    rng = np.random.default_rng(7)
    Image.fromarray(scene(37, 23, 1)).save(os.path.join(DATA, "rgb_37x23.png"))
    Image.fromarray(scene(211, 157, 2, noise=3.0)).save(os.path.join(DATA, "rgb_211x157.png"),
                                                       optimize=True)
    rgba = np.concatenate([scene(50, 31, 3), rng.integers(0, 256, (31, 50, 1), dtype=np.uint8)], -1)
    rgba[:5, :, 3] = 0  # fully transparent rows keep their colour: alpha is dropped, not composited
    Image.fromarray(rgba, "RGBA").save(os.path.join(DATA, "rgba_50x31.png"))
    gray = scene(29, 41, 4)[:, :, 0]
    Image.fromarray(gray, "L").save(os.path.join(DATA, "gray_29x41.png"))
    la = np.stack([scene(17, 13, 5)[:, :, 1], rng.integers(0, 256, (13, 17), dtype=np.uint8)], -1)
    Image.fromarray(la, "LA").save(os.path.join(DATA, "graya_17x13.png"))
    pal = Image.fromarray(scene(33, 21, 6)).quantize(16)
    pal.info["transparency"] = 3
    pal.save(os.path.join(DATA, "pal_33x21.png"), transparency=3)
    # pixels indexing past PLTE: Pillow's palette is a grey ramp (i, i, i) past its entries
    idx = (np.arange(16 * 16).reshape(16, 16) * 37) % 256
    write_png_palette(os.path.join(DATA, "palpast_16x16.png"), 16, 16, 8, [200, 10, 20, 30, 220, 40, 50, 60, 240],
                      idx, trns=[0, 128])
    write_png_palette(os.path.join(DATA, "palpast4_13x5.png"), 13, 5, 4, [9, 8, 7, 6, 5, 4],
                      (np.arange(13 * 5).reshape(5, 13) * 7) % 16)
    rgb16 = rng.integers(0, 65536, (11, 19, 3), dtype=np.uint16)
    write_png16(os.path.join(DATA, "rgb16_19x11.png"), rgb16)
    gray16 = rng.integers(0, 65536, (9, 14), dtype=np.uint16)
    write_png16(os.path.join(DATA, "gray16_14x9.png"), gray16)
    Image.fromarray(scene(61, 47, 8, noise=4.0)).save(os.path.join(DATA, "photo_61x47.jpg"),
                                                      quality=90)
    Image.fromarray(scene(40, 30, 10, noise=4.0)).save(os.path.join(DATA, "prog444_40x30.jpg"),
                                                       quality=90, progressive=True, subsampling=0)
    Image.fromarray(scene(45, 35, 9, noise=4.0)[:, :, 1], "L").save(
        os.path.join(DATA, "gray_45x35.jpg"), quality=90)
    # 4 components: Pillow writes Adobe-inverted CMYK and reads it back as "CMYK;I"
    Image.fromarray(scene(29, 19, 11, noise=4.0)).convert("CMYK").save(
        os.path.join(DATA, "cmyk_29x19.jpg"), quality=90)
    return rgb16, gray16


def make_example():
    w, h = 320, 240
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([90 + 80 * y / h, 150 + 60 * y / h, 235 - 40 * y / h], -1)
    ground = np.stack([70 + 30 * np.sin(x / 17.0), 120 + 25 * np.cos(y / 9.0), 50 + 0 * x], -1)
    img = np.where((y > 150 + 12 * np.sin(x / 40.0))[..., None], ground, sky)
    rng = np.random.default_rng(42)
    img += rng.normal(0, 5, img.shape)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse((230, 25, 285, 80), fill=(255, 226, 120))
    d.rectangle((40, 110, 130, 185), fill=(160, 60, 45))
    d.polygon([(30, 112), (85, 70), (140, 112)], fill=(95, 40, 35))
    d.rectangle((75, 145, 95, 185), fill=(70, 45, 30))
    d.ellipse((170, 95, 230, 170), fill=(40, 110, 45))
    d.rectangle((195, 165, 205, 195), fill=(80, 55, 30))
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    os.makedirs(os.path.join(ROOT, "examples", "data"), exist_ok=True)
    im.save(os.path.join(ROOT, "examples", "data", "example.jpg"), quality=85)


# (image, interpolation, H, W); the C test lists the same cases.
CASES = [
    ("rgb_37x23.png", "nearest", 16, 12),
    ("rgb_37x23.png", "nearest", 50, 71),
    ("rgb_37x23.png", "nearest", 7, 100),
    ("rgb_37x23.png", "nearest", 23, 37),
    ("rgb_37x23.png", "nearest", 1, 1),
    ("rgb_37x23.png", "bilinear", 16, 12),
    ("rgb_37x23.png", "bilinear", 50, 71),
    ("rgb_37x23.png", "bilinear", 7, 100),
    ("rgb_37x23.png", "bilinear", 45, 13),
    ("rgb_37x23.png", "bilinear", 23, 37),
    ("rgb_37x23.png", "bilinear", 1, 1),
    ("rgb_211x157.png", "bilinear", 64, 48),
    ("rgb_211x157.png", "bilinear", 157, 60),
    ("rgb_211x157.png", "bilinear", 31, 211),
    ("rgb_211x157.png", "nearest", 64, 48),
    ("rgb_211x157.png", "nearest", 45, 67),
    ("rgba_50x31.png", "nearest", 31, 50),
    ("rgba_50x31.png", "bilinear", 20, 24),
    ("rgba_50x31.png", "nearest", 9, 40),
    ("gray_29x41.png", "bilinear", 30, 30),
    ("gray_29x41.png", "nearest", 41, 29),
    ("graya_17x13.png", "bilinear", 26, 9),
    ("pal_33x21.png", "bilinear", 21, 33),
    ("pal_33x21.png", "nearest", 10, 50),
    ("palpast_16x16.png", "nearest", 16, 16),
    ("palpast_16x16.png", "bilinear", 11, 23),
    ("palpast4_13x5.png", "nearest", 5, 13),
    ("rgb16_19x11.png", "bilinear", 11, 19),
    ("rgb16_19x11.png", "bilinear", 8, 30),
    ("photo_61x47.jpg", "nearest", 47, 61),
    ("photo_61x47.jpg", "bilinear", 30, 20),
    ("photo_61x47.jpg", "nearest", 100, 80),
    ("gray_45x35.jpg", "bilinear", 35, 45),
    ("prog444_40x30.jpg", "nearest", 30, 40),
    ("prog444_40x30.jpg", "bilinear", 17, 23),
    ("cmyk_29x19.jpg", "nearest", 19, 29),
    ("cmyk_29x19.jpg", "bilinear", 10, 15),
    ("example.jpg", "bilinear", 64, 64),
    ("example.jpg", "nearest", 64, 64),
]


def main():
    if not os.path.exists(os.path.join(ROOT, "examples", "data", "example.jpg")):
        make_example()
    rgb16, gray16 = make_inputs()
    # Pillow keeps the high byte of 16-bit RGB samples, as stb_image does.
    pil16 = keras_load_img(os.path.join(DATA, "rgb16_19x11.png"), 11, 19, "nearest")
    assert np.array_equal(pil16, (rgb16 >> 8).astype(np.uint8))
    # 16-bit grey: Pillow clips the mode "I" values to 255; libfusenet keeps the
    # high byte. The reference for this file is therefore computed here, not by Pillow.
    g8 = (gray16 >> 8).astype(np.uint8)
    np.repeat(g8[:, :, None], 3, axis=2).tofile(os.path.join(REF, "gray16_14x9.png.nearest.9x14.rgb"))
    for name, interp, h, w in CASES:
        src = os.path.join(DATA, name) if name != "example.jpg" else os.path.join(
            ROOT, "examples", "data", "example.jpg")
        out = keras_load_img(src, h, w, interp)
        assert out.shape == (h, w, 3)
        out.tofile(os.path.join(REF, "%s.%s.%dx%d.rgb" % (name, interp, h, w)))


if __name__ == "__main__":
    main()
