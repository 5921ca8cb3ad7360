"""Peak CPU memory of one model, measured in a fresh process: `python -m hsfpn_yolo.bench.memory NAME`.

torch allocates outside Python's allocator (tracemalloc sees nothing), so this reads the process' resident set: the
Linux peak RSS (VmHWM), reset before each phase through /proc/self/clear_refs, minus the RSS of the idle process
with its models and batch already built. Phases run from small to large because freed memory may stay mapped and
would otherwise inflate a smaller later phase. Without /proc it falls back to getrusage's max RSS (never reset).
"""

from __future__ import annotations

import argparse
import json
import resource

import torch

MB = 1 << 20


def _status_kb(key: str) -> int | None:
    """Return a `key: N kB` field of /proc/self/status, or None where there is none."""
    try:
        return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith(key + ":"))
    except (OSError, StopIteration):
        return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS; return whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss() -> int:
    """Return the resident set size in bytes (max RSS so far where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def peak_rss() -> int:
    """Return the peak resident set size since the last reset, in bytes."""
    kb = _status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def measure(name: str, imgsz: int, batch: int, threads: int | None = None) -> dict[str, float]:
    """Return MB above the idle process at the peak of: inference batch 1, inference `batch`, one training step.

    Args:
        name (str): Model name.
        imgsz (int): Input size.
        batch (int): Large batch size.
        threads (int, optional): torch CPU threads.
    """
    from .workloads import build, deployed, inference, synthetic_batch, train_step

    if threads:
        torch.set_num_threads(threads)
    model = build(name)
    fused = deployed(model)
    data = synthetic_batch(batch, imgsz, model.model[-1].nc, "cpu")
    one = data["img"][:1].clone()
    phases = {
        "infer_b1": inference(fused, one),
        f"infer_b{batch}": inference(fused, data["img"]),
        f"train_b{batch}": train_step(model, data),
    }
    base, out = current_rss(), {"method": "VmHWM reset" if reset_peak() else "ru_maxrss"}
    for key, fn in phases.items():
        reset_peak()
        fn()
        out[f"{key}_mb"] = (peak_rss() - base) / MB  # no clamp: a negative figure means the method failed
    return out


def main() -> None:
    """Print the measurement of one model as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(measure(args.name, args.imgsz, args.batch, args.threads)))


if __name__ == "__main__":
    main()
