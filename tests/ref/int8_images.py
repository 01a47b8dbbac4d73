#!/usr/bin/env python3
"""Deterministic natural-looking synthetic pictures for the int8 calibration, fidelity and benchmark.

synthetic_image(seed, i, h, w): a 1/f^alpha amplitude-spectrum noise field (alpha ~ U(1, 2), random
phases; natural images have alpha near 1), a luminance field shared by the channels plus a weaker
chroma field per channel and a tint, then 2-6 soft-edged ellipses, rectangles and triangles
alpha-blended on top. Image i of a set depends only on (seed, i, h, w). caffe() is Keras' caffe
preprocessing (RGB -> BGR, minus the ImageNet means), the same as the CLI's image loader
(src/io/image.c). Needs numpy and Pillow only (no torch).
"""

import os

import numpy as np

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)  # keras imagenet_utils, caffe mode


# ---------------------------------------------------------------------------
# Synthetic images
# ---------------------------------------------------------------------------

def _one_over_f(rng, h, w, alpha):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0 / max(h, w)
    amp = f ** (-alpha)
    phase = rng.uniform(0.0, 2.0 * np.pi, (h, w))
    field = np.fft.ifft2(amp * np.exp(1j * phase)).real
    field -= field.mean()
    return field / max(field.std(), 1e-12)


def synthetic_image(seed, index, h, w):
    """One RGB uint8 (h, w, 3) picture; depends only on (seed, index, h, w)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([seed, index])
    alpha = rng.uniform(1.0, 2.0)             # natural images: amplitude ~ 1/f^alpha, alpha near 1
    lum = _one_over_f(rng, h, w, alpha)
    tint = rng.uniform(-1.0, 1.0, 3)
    img = np.empty((h, w, 3))
    for c in range(3):
        chroma = _one_over_f(rng, h, w, alpha + 0.5)
        img[..., c] = lum + 0.35 * chroma + 0.6 * tint[c]
    base = rng.uniform(70.0, 170.0, 3)
    contrast = rng.uniform(25.0, 60.0)
    img = np.clip(base + contrast * img, 0, 255).astype(np.uint8)
    pic = Image.fromarray(img, "RGB")
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(-0.2, 0.9) * w, rng.uniform(-0.2, 0.9) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
        colour = tuple(int(v) for v in rng.integers(0, 256, 3)) + (int(rng.integers(120, 256)),)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            pts = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(3)]
            draw.polygon(pts, fill=colour)
    layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    pic = Image.alpha_composite(pic.convert("RGBA"), layer).convert("RGB")
    return np.asarray(pic, dtype=np.uint8)


def synthetic_images(seed, count, h, w):
    return np.stack([synthetic_image(seed, i, h, w) for i in range(count)])


def write_pngs(images, directory, prefix="img"):
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p = os.path.join(directory, "%s_%05d.png" % (prefix, i))
        Image.fromarray(img, "RGB").save(p)
        paths.append(p)
    return paths


def load_photo(path, h, w):
    """keras.utils.load_img(path, target_size=(h, w)) (nearest), as uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.NEAREST)
        return np.asarray(im, dtype=np.uint8)


def caffe(images_u8):
    """Keras caffe preprocessing of (N, H, W, 3) RGB uint8: BGR, minus the ImageNet means."""
    return np.ascontiguousarray(images_u8[..., ::-1].astype(np.float32) - CAFFE_MEAN_BGR)
