"""Time `hsfpn-yolo doctor` on a generated dataset of many label files (a benchmark, not a test).

Writes N label files of drone-like boxes and N real images into a temporary folder and times the doctor's label
reading alone and the whole report. Each image is a real PNG whose header the doctor reads, but only one PNG per frame
size is encoded: the others are hard links to it (copies where the file system has none), so writing 10 000 frames
takes seconds and the sizes read are real.

Examples:
    python scripts/doctor_speed.py                      # 10 000 files, 30 boxes each
    python scripts/doctor_speed.py --files 2000 --boxes 60 --imgsz 1024
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES = ((1920, 1080), (1360, 765), (960, 540))  # VisDrone-like frame sizes, cycled over the files


def encoded(width: int, height: int) -> bytes:
    """Return a grey PNG of WIDTH x HEIGHT."""
    import cv2

    ok, buf = cv2.imencode(".png", np.full((height, width, 3), 110, np.uint8))
    assert ok
    return buf.tobytes()


def write_dataset(root: Path, files: int, boxes: int, seed: int = 0) -> Path:
    """Write FILES images and label files of BOXES boxes each under ROOT; return the data YAML."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    originals = {}
    for w, h in FRAMES:
        originals[(w, h)] = root / f"frame-{w}x{h}.png"
        originals[(w, h)].write_bytes(encoded(w, h))
    for i in range(files):
        w, h = FRAMES[i % len(FRAMES)]
        image = images / f"{i:06d}.png"
        try:
            os.link(originals[(w, h)], image)
        except OSError:
            image.write_bytes(originals[(w, h)].read_bytes())
        side = np.exp(rng.normal(np.log(18), 0.6, (boxes, 2))).clip(2, 300)  # px, median 18 as in drone footage
        centre = rng.uniform(side / 2, (w, h) - side / 2)
        rows = np.c_[rng.integers(0, 10, boxes), centre / (w, h), side / (w, h)]
        (labels / f"{i:06d}.txt").write_text(
            "".join(f"{int(r[0])} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f} {r[4]:.6f}\n" for r in rows)
        )
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnc: 10\n")
    return data


def main() -> None:
    """Generate the dataset, time the doctor, print the times."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10_000, help="label files (and images)")
    p.add_argument("--boxes", type=int, default=30, help="boxes per file")
    p.add_argument("--imgsz", type=int, default=640, help="training size the doctor reports at")
    args = p.parse_args()

    from hsfpn_yolo.diagnosis import doctor
    from hsfpn_yolo.diagnosis.labels import read_split

    with tempfile.TemporaryDirectory(prefix="doctor-speed-") as tmp:
        t = time.perf_counter()
        data = write_dataset(Path(tmp), args.files, args.boxes)
        print(
            f"wrote {args.files} images and label files ({args.files * args.boxes} boxes) in "
            f"{time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        labels = read_split(data, "train", progress=False)
        read = time.perf_counter() - t
        t = time.perf_counter()
        report = doctor(data, imgsz=args.imgsz, progress=False)
        total = time.perf_counter() - t
    print(f"read {len(labels.images)} label files and image headers ({len(labels.cls)} boxes): {read:.1f} s")
    print(
        f"whole doctor report at imgsz {args.imgsz} (models {', '.join(m['model'] for m in report['models'])}, "
        f"tiling {report['tiling']['tiles']} tiles): {total:.1f} s"
    )
    print(f"cores: {os.cpu_count()}, torch threads: {__import__('torch').get_num_threads()}")


if __name__ == "__main__":
    main()
