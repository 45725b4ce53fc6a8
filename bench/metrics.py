"""CPU cost of the image metrics per 1024² output (target: ≤ 25 ms for the metrics).

    python3 bench/metrics.py [--repeat 30]

The store step decodes each output once and hands it to the thumbnail and the metrics, so
what the metrics add there is also shown (store step − thumbnail alone).

Outputs are 1024×1024 PNGs (what SDXL returns) made from scikit-image's bundled photos; the
input is prepared once per sweep image, as the worker does. Baselines in the same run: decoding
the PNG with Pillow (which the metrics must do once, since the worker hands them the bytes) and
making the thumbnail that the store step already makes. CPU is process time (user + system)
per output, median of ``--repeat`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, table, verdict, write_results

import numpy as np
from PIL import Image
from skimage import data as skdata

from core.data.images import decode_rgb, make_thumbnail, thumbnail_of
from core.insight.metrics import measure, prepare

TARGET_MS = 25.0


def png_1024(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).resize((1024, 1024), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def cpu_ms(fn, repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    cases = {"no face (coffee)": skdata.coffee(), "a face (astronaut)": skdata.astronaut()}
    rows = []
    for name, photo in cases.items():
        input_png = png_1024(photo)
        noisy = np.clip(photo + rng.normal(0, 20, photo.shape), 0, 255).astype(np.uint8)
        output_png = png_1024(noisy)
        decoded = np.asarray(Image.open(io.BytesIO(output_png)).convert("RGB"))
        reference = prepare(input_png)
        row = {
            "case": name,
            "face": reference.face_box is not None,
            "decode_ms": cpu_ms(lambda: Image.open(io.BytesIO(output_png)).convert("RGB").load(),
                                args.repeat),
            "thumbnail_ms": cpu_ms(lambda: make_thumbnail(output_png), args.repeat),
            "metrics_ms": cpu_ms(lambda: measure(reference, decoded), args.repeat),
            "with_decode_ms": cpu_ms(lambda: measure(reference, output_png), args.repeat),
            "prepare_input_ms": cpu_ms(lambda: prepare(input_png), max(3, args.repeat // 5)),
        }
        def store_step() -> None:  # as the worker does it: one decode for both
            decoded_once = decode_rgb(output_png, at_least_px=512)
            thumbnail_of(decoded_once)
            measure(reference, decoded_once)

        row["store_step_ms"] = cpu_ms(store_step, args.repeat)
        row["added_ms"] = row["store_step_ms"] - row["thumbnail_ms"]
        row["ratio_to_decode"] = row["metrics_ms"] / row["decode_ms"]
        rows.append(row)

    no_face = rows[0]
    ok = no_face["metrics_ms"] <= TARGET_MS
    shown = [{k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(table(shown, [("case", "input"), ("face", "face found"),
                        ("decode_ms", "decode PNG ms (baseline)"),
                        ("thumbnail_ms", "thumbnail ms (baseline)"),
                        ("metrics_ms", "metrics ms"), ("with_decode_ms", "metrics + decode ms"),
                        ("ratio_to_decode", "metrics / decode"),
                        ("store_step_ms", "store step: thumbnail + metrics, one decode ms"),
                        ("added_ms", "added to the store step ms"),
                        ("prepare_input_ms", "prepare input ms (once per photo)")]))
    print(f"\nTarget: metrics without a face ≤ {TARGET_MS:.0f} ms CPU per 1024² output: "
          f"{no_face['metrics_ms']:.1f} ms → {verdict(ok)}. Identity adds one dlib face "
          f"descriptor per output where the input has a face: "
          f"{rows[1]['metrics_ms'] - no_face['metrics_ms']:.0f} ms.")
    path = write_results("metrics", {"machine": machine_info(), "repeat": args.repeat,
                                     "target_ms": TARGET_MS, "rows": rows, "pass": ok})
    print(f"Results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
