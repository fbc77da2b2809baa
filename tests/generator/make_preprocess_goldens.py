#!/usr/bin/env python3
"""Golden outputs for the Rust image preprocessing (`webvlm-model/src/preprocess`).

The Rust side claims bit-exactness with two upstream pieces, and this script records what those
pieces produce on a handful of awkward synthetic images:

* Pillow's `Image.resize` on 8-bit RGB (libImaging `Resample.c` for the convolution filters,
  `Geometry.c` for NEAREST) for every filter, up- and down-scaling, and with one axis unchanged
  (so the pass-skipping logic is exercised);
* transformers' `Idefics3ImageProcessorPil` (resize to the longest edge, resize for the vision
  encoder, tiling, rescale, normalise, pixel mask) for several processor configs;
* transformers' `convert_to_rgb` on RGBA input (alpha composited onto white), both on one image
  and, through a checksum, on every (colour, alpha) byte pair;
* the two size computations (`get_resize_output_image_size`, `resize_for_vision_encoder`) on a
  table of random and extreme image sizes.

Pillow 13 changed the order of the two resampling passes for some sizes (vertical first when the
height shrinks much more than the width, python-pillow/Pillow#9549), which changes those outputs
by whole levels; the goldens therefore pin Pillow >= 13 and the script refuses older versions.

Layout of the output directory (all multi-byte values little-endian):

    index.json          what every file is, the expected shapes / rows / cols / checksums, the
                        processor configs as transformers serialises them, the size table
    img_*.bin           input pixels, row-major, interleaved RGB or RGBA (uint8)
    rgb_*.bin           RGBA inputs after convert_to_rgb (uint8 RGB)
    resize_*.bin        PIL resize results (uint8 RGB)
    pv_*.bin            pixel_values, float32 [tiles, 3, H, W]
    mask_*.bin          pixel_attention_mask as uint8 [tiles, H, W]

Cases whose tensors would be too big to commit (the real SmolVLM config) only store a checksum:
sum over i of bits(v[i]) * (2 i + 1) modulo 2**64, bits() being the float32 bit pattern (or the
uint8 value for masks). Any single changed element changes it, and it is cheap in numpy and Rust.

Run from the repository root (versions pinned in requirements.txt next to this file):
    python tests/generator/make_preprocess_goldens.py --out tests/fixtures/preprocess
"""

import argparse
import json
from pathlib import Path

import numpy as np
import PIL
import transformers
from PIL import Image
from transformers.models.idefics3.image_processing_pil_idefics3 import (
    Idefics3ImageProcessorPil,
    get_resize_output_image_size,
)

# PIL.Image.Resampling codes; the Rust `Filter` enum uses the same numbers.
FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def synthetic(width: int, height: int, channels: int, seed: int) -> np.ndarray:
    """Noise blocks, smooth ramps and hard black/white edges.

    Hard edges make Lanczos and bicubic overshoot, so the 0..255 clipping is exercised; ramps
    catch off-by-one-pixel errors in the kernel placement; noise catches everything else.
    """
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((height, width, channels), dtype=np.uint8)
    for c in range(min(channels, 3)):
        ramp = (x * 255 // max(width - 1, 1) + y * 97 // max(height - 1, 1) + c * 40) % 256
        noise = rng.randint(0, 256, size=(height, width))
        edges = np.where(((x // 3) + (y // 2) + c) % 2 == 0, 0, 255)
        block = ((x // 5) + 2 * (y // 4)) % 3
        out[..., c] = np.select([block == 0, block == 1], [noise, ramp], edges).astype(np.uint8)
    if channels == 4:
        # Every alpha regime: fully transparent, fully opaque, and everything in between.
        alpha = rng.randint(0, 256, size=(height, width))
        alpha[0, :] = 0
        alpha[1, :] = 255
        out[..., 3] = alpha.astype(np.uint8)
    return out


# name -> (width, height, channels, seed)
IMAGES = {
    "w37h50": (37, 50, 3, 1),
    "w50h37": (50, 37, 3, 2),
    "w7h3": (7, 3, 3, 3),
    "w200h61": (200, 61, 3, 4),
    "w1h1": (1, 1, 3, 5),
    "w23h17_rgba": (23, 17, 4, 6),
}

# name -> list of (width, height) targets. Chosen so that every image sees a downscale, an
# upscale or mixed scale, and (where cheap) a target with one unchanged side. Pillow 13 runs the
# vertical pass first when the height shrinks by more than twice as many pixels as the width
# (37x50 -> 45x22 and -> 30x12; 50x37 -> 40x16 is just past that boundary, 40x17 just before).
# 50 -> 21 is a width where NEAREST's accumulated source position (Pillow adds the step once per
# pixel) picks a different column than multiplying would.
RESIZE_TARGETS = {
    "w37h50": [(23, 31), (45, 22), (30, 12)],
    "w50h37": [(17, 12), (40, 17), (40, 16), (21, 12)],
    "w7h3": [(16, 9), (3, 2), (7, 11), (13, 3)],
    "w200h61": [(23, 7), (24, 66)],
    "w1h1": [(5, 3), (2, 7)],
    "w23h17_rgba": [(30, 11)],
}

SMALL_SPLIT = {"size": {"longest_edge": 30}, "max_image_size": {"longest_edge": 16}}
SMALL_NOSPLIT = {**SMALL_SPLIT, "do_image_splitting": False}
# The resized image already fits one tile: splitting on, but rows = cols = 0.
FITS_ONE_TILE = {"size": {"longest_edge": 16}, "max_image_size": {"longest_edge": 16}}
# Non-default filter, mean/std that are not exact in float32, non-default rescale factor.
SMALL_CLIP = {
    **SMALL_SPLIT,
    "resample": FILTERS["bicubic"],
    "image_mean": CLIP_MEAN,
    "image_std": CLIP_STD,
    "rescale_factor": 1 / 256,
}
# SmolVLM's real settings are the class defaults (size 1456, tiles 364): checksum only.
DEFAULT = {}

# (image, config name, config kwargs, store full tensors?). The 1x1 image gives constant tiles,
# for which a checksum says as much as the tensor would.
PROCESSOR_CASES = [
    *[(name, "small_split", SMALL_SPLIT, name != "w1h1") for name in IMAGES],
    *[(name, "small_nosplit", SMALL_NOSPLIT, name != "w1h1") for name in IMAGES],
    ("w37h50", "fits_one_tile", FITS_ONE_TILE, True),
    ("w7h3", "fits_one_tile", FITS_ONE_TILE, True),
    ("w7h3", "small_clip", SMALL_CLIP, True),
    ("w200h61", "default", DEFAULT, False),
    ("w37h50", "default", DEFAULT, False),
    ("w23h17_rgba", "default", DEFAULT, False),
]


def size_rule_cases() -> list[list[int]]:
    """Output sizes of the two size computations, straight from transformers' code.

    Each row: [height, width, longest_edge, tile, resized_h, resized_w, vision_h, vision_w] where
    `resized` is `get_resize_output_image_size` (longest edge, even rule, 4096 bound) and `vision`
    is what `resize_for_vision_encoder` asks for when given the resized image.
    """

    class SizeRecorder(Idefics3ImageProcessorPil):
        def resize(self, image, size, resample=None, **kwargs):
            self.requested = (size.height, size.width)
            return image

    recorder = SizeRecorder()
    rng = np.random.RandomState(7)
    shapes = [(1, 1), (1, 8192), (8192, 1), (8192, 8192), (3, 7), (7, 3), (4095, 4097)]
    shapes += [tuple(int(v) for v in rng.randint(1, 8193, size=2)) for _ in range(90)]
    # Extreme aspect ratios, where truncation and the even rule interact most.
    shapes += [(int(rng.randint(1, 40)), int(rng.randint(1, 8193))) for _ in range(25)]
    shapes += [(int(rng.randint(1, 8193)), int(rng.randint(1, 40))) for _ in range(25)]
    edges = [1, 2, 15, 30, 364, 512, 1456, 1536, 4095, 5000, 9999]
    tiles = [1, 7, 16, 364, 384, 512]
    rows = []
    for i, (h, w) in enumerate(shapes):
        edge = edges[i % len(edges)]
        tile = tiles[(i // len(edges)) % len(tiles)]
        # Shape-only stand-ins: no pixel memory, even for 8192 x 8192.
        rh, rw = get_resize_output_image_size(
            np.broadcast_to(np.zeros((), np.uint8), (3, h, w)), resolution_max_side=edge
        )
        recorder.resize_for_vision_encoder(
            np.broadcast_to(np.zeros((), np.uint8), (3, rh, rw)), tile
        )
        vh, vw = recorder.requested
        rows.append([h, w, edge, tile, int(rh), int(rw), int(vh), int(vw)])
    return rows


def to_json(value, depth: int = 0) -> str:
    """JSON with one line per case, so the index stays small yet diffs per case."""
    pad = " " * (depth + 1)
    end = "\n" + " " * depth
    nested = (list, dict)
    if isinstance(value, dict) and depth <= 1 and any(isinstance(v, nested) for v in value.values()):
        items = [f"{pad}{json.dumps(k)}: {to_json(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + end + "}"
    if isinstance(value, list) and value and isinstance(value[0], nested):
        items = [pad + json.dumps(v) for v in value]
        return "[\n" + ",\n".join(items) + end + "]"
    return json.dumps(value)


def checksum(values: np.ndarray) -> int:
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.dtype == np.float32:
        bits = flat.view(np.uint32).astype(np.uint64)
    else:
        bits = flat.astype(np.uint64)
    weights = np.arange(flat.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int((bits * weights).sum(dtype=np.uint64))


def pil_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB")


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """What transformers' PIL backend turns a PIL input into before any resizing."""
    proc = Idefics3ImageProcessorPil()
    return np.ascontiguousarray(proc.convert_to_rgb(pil_image(pixels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/preprocess"))
    args = parser.parse_args()
    if int(PIL.__version__.split(".")[0]) < 13:
        raise SystemExit(f"Pillow {PIL.__version__} resamples in a different pass order; use >= 13")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.bin"):
        old.unlink()

    index: dict = {
        "generator": "tests/generator/make_preprocess_goldens.py",
        "versions": {
            "transformers": transformers.__version__,
            "pillow": PIL.__version__,
            "numpy": np.__version__,
        },
        "checksum": "sum_i bits(v[i]) * (2*i + 1) mod 2**64; bits = float32 bit pattern or uint8",
        "images": [],
        "rgba_to_rgb": [],
        "resize": [],
        "processor_configs": {},
        "processor": [],
    }

    pixels = {}
    for name, (width, height, channels, seed) in IMAGES.items():
        img = synthetic(width, height, channels, seed)
        pixels[name] = img
        file = f"img_{name}.bin"
        img.tofile(out / file)
        index["images"].append(
            {"name": name, "width": width, "height": height, "channels": channels, "file": file}
        )
        if channels == 4:
            rgb = as_rgb(img)
            file = f"rgb_{name}.bin"
            rgb.tofile(out / file)
            index["rgba_to_rgb"].append({"image": name, "file": file})

    # Every (colour, alpha) pair through convert_to_rgb: row = colour, column = alpha.
    colour, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    table_rgba = np.stack([colour, colour, colour, alpha], axis=-1).astype(np.uint8)
    table_rgb = as_rgb(table_rgba)
    assert (table_rgb[..., 0] == table_rgb[..., 1]).all()
    index["alpha_table"] = {
        "layout": "256x256 RGBA image, pixel (x=alpha, y=colour) = (colour, colour, colour, alpha); "
        "checksum over the uint8 RGB output of convert_to_rgb",
        "checksum": checksum(table_rgb),
    }

    for name, targets in RESIZE_TARGETS.items():
        source = pil_image(as_rgb(pixels[name]))
        for width, height in targets:
            for filter_name, code in FILTERS.items():
                resized = np.asarray(source.resize((width, height), resample=code))
                assert resized.shape == (height, width, 3)
                file = f"resize_{name}_{width}x{height}_{filter_name}.bin"
                np.ascontiguousarray(resized).tofile(out / file)
                index["resize"].append(
                    {
                        "image": name,
                        "filter": code,
                        "filter_name": filter_name,
                        "width": width,
                        "height": height,
                        "file": file,
                    }
                )

    index["size_rules"] = {
        "columns": [
            "height", "width", "longest_edge", "tile",
            "resized_height", "resized_width", "vision_height", "vision_width",
        ],
        "rows": size_rule_cases(),
    }

    for name, config_name, kwargs, full in PROCESSOR_CASES:
        proc = Idefics3ImageProcessorPil(**kwargs)
        enc = proc(
            images=[[pil_image(pixels[name])]], return_tensors="np", return_row_col_info=True
        )
        pv = enc["pixel_values"]
        mask = enc["pixel_attention_mask"]
        assert pv.dtype == np.float32 and pv.shape[0] == 1, (pv.dtype, pv.shape)
        pv = np.ascontiguousarray(pv[0])
        mask = np.ascontiguousarray(mask[0]).astype(np.uint8)
        num_tiles, channels, height, width = pv.shape
        assert channels == 3 and mask.shape == (num_tiles, height, width)
        # Exactly what transformers writes to preprocessor_config.json for this processor.
        index["processor_configs"][config_name] = json.loads(proc.to_json_string())
        case = {
            "image": name,
            "config_name": config_name,
            "num_tiles": num_tiles,
            "height": height,
            "width": width,
            "rows": int(enc["rows"][0][0]),
            "cols": int(enc["cols"][0][0]),
            "pixel_values_checksum": checksum(pv),
            "mask_checksum": checksum(mask),
            "pixel_values_file": None,
            "mask_file": None,
        }
        if full:
            stem = f"{name}_{config_name}"
            case["pixel_values_file"] = f"pv_{stem}.bin"
            case["mask_file"] = f"mask_{stem}.bin"
            pv.astype("<f4").tofile(out / case["pixel_values_file"])
            mask.tofile(out / case["mask_file"])
        index["processor"].append(case)

    (out / "index.json").write_text(to_json(index) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(list(out.iterdir()))} files, {total} bytes, to {out}")


if __name__ == "__main__":
    main()
