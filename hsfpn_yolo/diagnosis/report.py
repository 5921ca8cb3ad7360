"""The doctor's report for people and scripts: a compact terminal table, a PNG and the JSON of every number.

Files are written only once everything is computed and rendered, each atomically, so a failed run writes nothing.
"""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path
from typing import Any

from .advice import pct
from .evidence import by_start
from .geometry import SIZE_KEYS, SIZE_LABELS

WIDTH = 118  # terminal width the reasons are wrapped to


def aligned(rows: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Return rows as padded text columns: the columns in LEFT left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]


def _share(v: float | None) -> str:
    """Format a share, or '–' where there is none."""
    return "–" if v is None else pct(v)


def sizes_block(sizes: dict[str, Any], imgsz: int) -> list[str]:
    """Return the size table: boxes and share per size key."""
    rows = [["size (sqrt of box area)", "boxes", "share"]]
    rows += [[SIZE_LABELS[k], str(v["count"]), pct(v["share"])] for k, v in sizes["buckets"].items()]
    return [f"Object sizes at {imgsz} px, median {sizes['median']:.1f} px:", *("  " + r for r in aligned(rows))]


def enlargement_text(e: dict[str, Any]) -> str:
    """Describe the measured small-target enlargement."""
    return f"sides <{e['below']:g} px -> {e['to']:g} px" if e["applies"] else "none"


def models_block(report: dict[str, Any]) -> list[str]:
    """Return the candidate tables: per model overall, then the no-candidate shares per size."""
    head = [
        "model",
        "strides",
        "under finest stride",
        "none, plain",
        "none, enlarged",
        "median",
        "small-target enlargement",
    ]
    rows = [head] + [
        [
            m["model"],
            ",".join(map(str, m["strides"])),
            pct(m["below_finest_stride"]),
            pct(m["no_candidate"]["plain"]),
            pct(m["no_candidate"]["enlarged"]),
            f"{m['median_candidates']['enlarged']:g}",
            enlargement_text(m["enlargement"]),
        ]
        for m in report["models"]
    ]
    shown = [k for k in SIZE_KEYS if report["sizes"]["buckets"][k]["count"]]
    per_size = [["boxes without a candidate, plain / enlarged", *(SIZE_LABELS[k] for k in shown)]]
    for m in report["models"]:
        cells = [
            f"{_share(m['buckets'][k]['no_candidate_plain'])} / {_share(m['buckets'][k]['no_candidate_enlarged'])}"
            for k in shown
        ]
        per_size.append([m["model"], *cells])
    a = report["assigner"]
    title = (
        f"Candidate anchor points per box, Ultralytics {a['ultralytics']} {a['function']}\n"
        "(none: share of boxes without one, in the plain in-box test and as trained; median: as trained):"
    )
    return [title, *("  " + r for r in aligned(rows, (0, 1, 6))), *("  " + r for r in aligned(per_size))]


def tiling_block(t: dict[str, Any], imgsz: int) -> list[str]:
    """Return the tiling lines: what tiles would do to the large frames, against resizing them."""
    head = f"Tiling ({t['tile']} px tiles, overlap {t['overlap']}, min-visible {t['min_visible']}):"
    if not t["applies"]:
        return [f"{head} not applied: {t['reason']}"]
    summary = (
        f"{head} {t['tileable']} frames larger than {imgsz} px -> {t['tiles']} tiles ({t['tiles_per_frame']:.1f} per "
        f"frame); of their {t['boxes']} boxes {t['whole']} lie whole in a tile, {t['split']} only in cut pieces, "
        f"{t['lost']} in none; {t['pieces_cut']} of {t['pieces']} pieces are cut by a tile edge"
    )
    lines = textwrap.wrap(summary, WIDTH, subsequent_indent="  ", break_on_hyphens=False)
    rows = [["size", f"resized to {imgsz}", f"on tiles, at {imgsz}"]]
    for k in SIZE_KEYS:
        a, b = t["sizes_resized"]["buckets"][k], t["sizes_tiles"]["buckets"][k]
        if a["count"] or b["count"]:
            rows.append([SIZE_LABELS[k], f"{a['count']} ({pct(a['share'])})", f"{b['count']} ({pct(b['share'])})"])
    rows.append(["no P3-P5 anchor centre inside", pct(t["resized_lacking_p3"]), pct(t["tiles_lacking_p3"])])
    if t["too_small"]:
        lines.append(f"  {t['too_small']} larger frames have a side under the tile and are not tiled")
    return lines + ["  " + r for r in aligned(rows)]


def wrap(label: str, text: str) -> list[str]:
    """Return TEXT wrapped under a hanging LABEL."""
    indent = f"  {label:<7}" if label else "  - "
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=" " * len(indent), break_on_hyphens=False
    )


def table(report: dict[str, Any]) -> str:
    """Return the report as compact terminal text."""
    f, b, imgsz = report["frames"], report["boxes"], report["imgsz"]
    small, large = (f["width"]["min"], f["height"]["min"]), (f["width"]["max"], f["height"]["max"])
    size = "{}x{}".format(*small) + ("" if small == large else " .. {}x{}".format(*large))
    scaled = f"x{f['scale_median']:.2f} (median; x{f['scale_min']:.2f} .. x{f['scale_max']:.2f})"
    frames = f"{f['count']} frames of {size} px ({f['background']} without boxes)"
    lines = [
        f"Doctor: {report['data']} ({report['split']}, {report['task']})",
        f"{frames}, {b['count']} boxes in {b['classes']} classes",
        f"Training size {imgsz}: frames scaled {scaled}, {f['large']} frames larger than it",
        "",
        *sizes_block(report["sizes"], imgsz),
        "",
        *models_block(report),
        "",
        *tiling_block(report["tiling"], imgsz),
    ]
    c = report["nwd"]["constant"]
    lines.append(f"NWD constant (constant: auto): C = {c:.2f} px at {imgsz}" if c else "NWD: detect models only")
    lines += ["", "Advice:"]
    a = report["advice"]
    lines += wrap("size", f"{a['size']['pick']}: {a['size']['reason']}")
    lines += wrap("model", f"{a['model']['pick']}: {a['model']['reason']}")
    lines += wrap("NWD", f"{a['nwd']['pick']}: {a['nwd']['reason']}")
    lines += evidence_block(report)
    return "\n".join(lines)


def evidence_block(report: dict[str, Any]) -> list[str]:
    """Return the lines naming each measured comparison the advice cites: seeds, regime and where it is reported."""
    e = report["evidence"]
    lines = [f"Measured on the benchmark's synthetic set (evidence of {e['date']}, {e['file']}):"]
    for c in e["cited"].values():
        budget = " and ".join(f"{x['seeds']} seeds {start}" for start, x in by_start(c).items())
        lines += wrap("", f"{c['model']} vs {c['baseline']}: {c['regime']['label']}, {budget}; {c['section']}")
    return lines


def plot(report: dict[str, Any]) -> bytes:
    """Return the PNG: the size histogram by bucket with the model strides marked, and the candidates per box."""
    import numpy as np
    from matplotlib.figure import Figure

    from .geometry import size_keys

    fig = Figure(figsize=(13, 4.8), layout="constrained")  # a bare Figure renders with Agg: no display, no pyplot
    ax, bx = fig.subplots(1, 2, width_ratios=(3, 2))
    name = "/".join(Path(report["data"]).parts[-2:])  # e.g. datasets/tiny-synth.yaml, visdrone/data.yaml
    hist = report["sizes"]["histogram"]
    edges, counts = np.array(hist["edges"]), np.array(hist["counts"])
    keys = np.array(SIZE_KEYS)[size_keys(np.sqrt(edges[:-1] * edges[1:]))]
    colours = dict(zip(SIZE_KEYS, ("#9e9e9e", "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#7f7f7f")))
    for k in SIZE_KEYS:
        m = (keys == k) & (counts > 0)
        if m.any():
            ax.bar(
                edges[:-1][m],
                counts[m],
                width=np.diff(edges)[m],
                align="edge",
                color=colours[k],
                label=SIZE_LABELS[k],
                edgecolor="white",
                linewidth=0.3,
            )
    strides = sorted({s for m in report["models"] for s in m["strides"]})
    for s in strides:
        ax.axvline(s, color="black", linestyle="--", linewidth=0.8)
        ax.text(
            s, 0.98, f"stride {s} ", rotation=90, va="top", ha="right", fontsize=8, transform=ax.get_xaxis_transform()
        )
    used = np.flatnonzero(counts)
    lo, hi = min(edges[used[0]], strides[0]) / 1.5, max(edges[used[-1] + 1], strides[-1]) * 1.5
    ticks = [t for t in 2.0 ** np.arange(-1, 11) if lo <= t <= hi]
    ax.set_xscale("log", base=2)
    ax.set_xlim(lo, hi)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set(
        xlabel=f"object size at {report['imgsz']} px: sqrt(w·h), px",
        ylabel="boxes",
        title=f"{name} ({report['split']}): {report['boxes']['count']} boxes",
    )
    ax.legend(fontsize=8, loc="best")
    n, bins = len(report["models"]), np.arange(len(report["models"][0]["candidates"]["enlarged"]))
    width = 0.8 / (2 * n)
    for i, m in enumerate(report["models"]):
        total, colour = max(sum(m["candidates"]["enlarged"]), 1), f"C{i}"
        x = bins - 0.4 + (2 * i + 0.5) * width
        bx.bar(x, np.array(m["candidates"]["enlarged"]) / total, width, color=colour, label=f"{m['model']}, as trained")
        bx.bar(
            x + width,
            np.array(m["candidates"]["plain"]) / total,
            width,
            facecolor="white",
            edgecolor=colour,
            hatch="///",
            label=f"{m['model']}, plain in-box test",
        )
    bx.set_xticks(bins, [*map(str, bins[:-1]), f"{bins[-1]}+"])
    bx.set(xlabel="candidate anchor points per box", ylabel="share of boxes", title="Candidates per box")
    bx.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def write(report: dict[str, Any], json_path: str | Path | None = None, plot_path: str | Path | None = None) -> list:
    """Render the requested outputs, then write each atomically; return the paths written.

    Args:
        report (dict): From `doctor`.
        json_path (str | Path, optional): Where to write the JSON.
        plot_path (str | Path, optional): Where to write the PNG.
    """
    import json

    files = {}
    if json_path:
        files[Path(json_path)] = (json.dumps(report, indent=2) + "\n").encode()
    if plot_path:
        files[Path(plot_path)] = plot(report)
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return list(files)
