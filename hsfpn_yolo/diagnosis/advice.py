"""The doctor's recommendation: training size or tiles, model family, NWD's box-loss term, each with its reason.

The rule is short on purpose. The geometry says what a dataset needs, the measured table (`evidence.json`) says
whether the remedy has been seen to work, and a remedy is recommended only where both agree:

1. Size. Frames larger than the training size lose their small objects when resized: tiles are recommended where
   they cut the share of boxes without an anchor centre of the P3-P5 levels by at least `TILE_GAIN` and the measured
   tiles comparison is a gain. Frames smaller than the training size are not upscaled: the measured table trained at the
   frames' own size, and upscaling adds compute, not detail; the rest of the advice is then weighed at that size.
2. Family. A box with no anchor centre of the P3-P5 levels (strides 8, 16, 32) inside it is learnt only from anchors
   outside the object (through the small-target enlargement). Where at least `LACKING` of the boxes are such, a P2
   head is argued for, and it is recommended if its measured AP gain is beyond noise (the P2 fine path instead if it
   gains on yolov8n-p2 in turn).
   Otherwise the P3-P5 family: the fine path where its AP gain is beyond noise, or its AP_vt gain where at least
   `VERY_TINY` of the boxes are very tiny; else the stock model.
3. NWD. Its box-loss term is argued for where at least `SMALL` of the boxes are under 16 px, and recommended only if
   its measured AP or AP_vt gain is beyond noise, measured on the head picked in 2 (P2 or P3-P5) where both were.

A measured gain counts only where it holds in every start it was measured from (random weights and a pretrained
checkpoint): most projects fine-tune.

Where the geometry argues for a remedy that the measurement does not show, the advice says so instead.
"""

from __future__ import annotations

from typing import Any

from .evidence import by_start

LACKING = 0.10  # share of boxes without a P3-P5 anchor centre inside from which a P2 head is argued for
VERY_TINY = 0.10  # share of boxes under 8 px from which an AP_vt gain counts
SMALL = 0.50  # share of boxes under 16 px from which NWD's box-loss term is argued for
TILE_GAIN = 0.10  # how much tiles must cut the share of boxes without a P3-P5 anchor centre inside


def pct(share: float) -> str:
    """Format a share as a percentage."""
    return f"{100 * share:.0f}%" if share >= 0.01 or share == 0 else f"{100 * share:.1f}%"


def gains(evidence: dict, key: str, metric: str = "AP") -> bool:
    """Return whether the measured comparison KEY is a gain beyond noise in METRIC in every start it was measured from
    (False where it is missing): a gain from scratch alone says nothing to a project that fine-tunes."""
    cells = [c.get(metric) for c in by_start(evidence["comparisons"].get(key, {})).values()]
    return all(d and d["verdict"] == "gain" for d in cells)


def measured(evidence: dict, key: str) -> str:
    """Return the measured comparison KEY in a few words: ΔAP and ΔAP_vt in points ± standard error, verdict, per
    start where there are several."""
    c = evidence["comparisons"].get(key)
    if c is None:
        return f"{key} not measured"
    starts = by_start(c)

    def cell(d: dict, start: str) -> str:
        where = f" {start}" if len(starts) > 1 else ""
        return f"{100 * d['diff']:+.1f} ± {100 * d['se']:.1f} ({d['verdict'].replace('within ', '')}){where}"

    cells = [
        f"Δ{m} " + ", ".join(cell(x[m], start) for start, x in starts.items() if m in x)
        for m in ("AP", "AP_vt")
        if m in c
    ]
    return f"{c['model']} vs {c['baseline']} {'; '.join(cells)}"


def pick(choice: str, reason: str, evidence: list[str], scale: str | None = None) -> dict[str, Any]:
    """Return one piece of advice: what to use, why, and the measured comparisons it cites."""
    return {"pick": choice, "reason": reason, "evidence": evidence, **({"scale": scale} if scale else {})}


def advise_size(facts: dict[str, Any], evidence: dict) -> dict[str, Any]:
    """Return the training-size advice, with the scale the rest of the advice is weighed at (`scale`: 'requested',
    'native' or 'tiles')."""
    imgsz, tiling, frames, native = facts["imgsz"], facts["tiling"], facts["frames"], facts.get("native")
    keep = f"imgsz {imgsz}"
    if not frames["large"]:
        if not native:
            return pick(keep, f"no frame is larger than {imgsz} px", [], "requested")
        up = imgsz / native["imgsz"]
        return pick(
            f"imgsz {native['imgsz']}",
            f"every frame fits {native['imgsz']} px; at {imgsz} they would be upscaled (x{frames['scale_median']:.2f} "
            f"the median frame) for about {up**2:.1f}x the compute and no new detail, and the measured table trained "
            "at the frames' own size",
            [],
            "native",
        )
    if not tiling["applies"]:
        return pick(
            keep, f"{frames['large']} of {frames['count']} frames are larger, but {tiling['reason']}", [], "requested"
        )
    drop = tiling["resized_lacking_p3"] - tiling["tiles_lacking_p3"]
    where = (
        f"{frames['large']} of {frames['count']} frames are larger than {imgsz} px; resized, "
        f"{pct(tiling['resized_lacking_p3'])} of their boxes contain no P3-P5 anchor centre, on "
        f"{tiling['tile']} px tiles {pct(tiling['tiles_lacking_p3'])}"
    )
    if drop >= TILE_GAIN and gains(evidence, "tiles"):
        choice = f"{tiling['tile']} px tiles, sliced prediction"  # the measured gain is of both together
        return pick(choice, f"{where}; measured: {measured(evidence, 'tiles')}", ["tiles"], "tiles")
    if drop >= TILE_GAIN:
        why = f"{where}: the geometry argues for tiles, the measurement shows no gain ({measured(evidence, 'tiles')})"
        return pick(keep, why, ["tiles"], "requested")
    return pick(keep, f"{where}: tiles change little", [], "requested")


def advise_family(facts: dict[str, Any], evidence: dict) -> dict[str, Any]:
    """Return the model advice: a model name and its reason."""
    if facts["task"] == "obb":
        keys = [k for k in ("finepath-obb", "hsfpn-obb") if k in evidence["comparisons"]]
        won = [k for k in keys if gains(evidence, k)]
        if won:
            return pick(evidence["comparisons"][won[0]]["model"], f"measured: {measured(evidence, won[0])}", won[:1])
        base = evidence["comparisons"][keys[0]]["baseline"] if keys else "the stock OBB model"
        return pick(base, "no OBB variant gains beyond noise: " + "; ".join(measured(evidence, k) for k in keys), keys)
    geometry = (
        f"{facts['at']}, {pct(facts['lacking_p3'])} of the boxes contain no P3-P5 anchor centre (strides 8-32), "
        f"{pct(facts['lacking_p2'])} no P2-P5 one (strides 4-32)"
    )
    if facts["lacking_p3"] < LACKING:
        p3 = advise_p3(facts, evidence)
        return {**p3, "reason": f"{geometry}, under the {pct(LACKING)} that argues for P2; {p3['reason']}"}
    if not gains(evidence, "p2"):
        p3 = advise_p3(facts, evidence)
        why = f"{geometry}: the geometry argues for P2, the measurement shows no gain ({measured(evidence, 'p2')})"
        return {**p3, "reason": f"{why}; {p3['reason']}", "evidence": ["p2", *p3["evidence"]]}
    why = f"{geometry}; measured: {measured(evidence, 'p2')}"
    if gains(evidence, "finepath-p2"):
        return pick("yolov8n-finepath-p2", f"{why}; {measured(evidence, 'finepath-p2')}", ["p2", "finepath-p2"])
    why += f"; the P2 fine path shows no gain over it: {measured(evidence, 'finepath-p2')}"
    return pick("yolov8n-p2", why, ["p2", "finepath-p2"])


def advise_p3(facts: dict[str, Any], evidence: dict) -> dict[str, Any]:
    """Return the P3-P5 pick: the fine path where its measured gain applies to this dataset, else the stock model."""
    path = measured(evidence, "finepath")
    if gains(evidence, "finepath"):
        return pick("yolov8n-finepath", f"measured: {path}", ["finepath"])
    if facts["very_tiny"] >= VERY_TINY and gains(evidence, "finepath", "AP_vt"):
        why = f"{pct(facts['very_tiny'])} of the boxes are under 8 px, where the fine path gains AP_vt: {path}"
        return pick("yolov8n-finepath", why, ["finepath"])
    why = f"no P3-P5 variant gains AP beyond noise ({pct(facts['very_tiny'])} of the boxes under 8 px): {path}; "
    return pick("yolov8n", why + measured(evidence, "hsfpn"), ["finepath", "hsfpn"])


def nwd_key(model: str, evidence: dict) -> str:
    """Return the NWD comparison that applies to MODEL: the one on yolov8n-p2 for a P2 model where it was measured."""
    return "nwd-p2" if model.endswith("-p2") and "nwd-p2" in evidence["comparisons"] else "nwd"


def advise_nwd(facts: dict[str, Any], evidence: dict, model: str = "yolov8n") -> dict[str, Any]:
    """Return whether NWD's box-loss term is worth a try on MODEL ('try' or 'skip'), with its reason."""
    if facts["task"] != "detect":
        return pick("skip", "NWD works with detect models (axis-aligned boxes) only", [])
    c = facts["nwd_constant"]
    argued = f"{pct(facts['under16'])} of the boxes are under 16 px (constant: auto gives C = {c:.2f} px)"
    key = nwd_key(model, evidence)
    m = measured(evidence, key)
    if facts["under16"] < SMALL:
        return pick("skip", f"{argued}, under the {pct(SMALL)} that argues for it; measured: {m}", [key])
    if gains(evidence, key) or gains(evidence, key, "AP_vt"):
        return pick("try", f"{argued}; measured: {m}", [key])
    return pick("skip", f"{argued}: the sizes argue for it, the measurement shows no gain ({m})", [key])


def advise(facts: dict[str, Any], evidence: dict) -> dict[str, Any]:
    """Return the advice on training size, model family and NWD from a dataset's measured facts.

    Args:
        facts (dict): `task`, `imgsz`, `frames` (`count`, `large`, `scale_median`), `tiling` (`applies` and `reason`,
            or `tile`, `resized_lacking_p3`, `tiles_lacking_p3` and `at_tile_scale`: the values below at tile scale),
            optionally `native` (the values below at the frames' own size), and at the training size `lacking_p3`,
            `lacking_p2` (shares of boxes without an anchor centre inside at the stride-8 and stride-4 sets),
            `very_tiny` (under 8 px), `under16` and `nwd_constant`.
        evidence (dict): From `evidence.load`.
    """
    size = advise_size(facts, evidence)
    scaled = {**facts, "at": f"at {facts['imgsz']} px"}
    if size["scale"] == "tiles":
        scaled.update(facts["tiling"]["at_tile_scale"], at=f"on {facts['tiling']['tile']} px tiles at {facts['imgsz']}")
    elif size["scale"] == "native":
        scaled.update(facts["native"], at=f"at {facts['native']['imgsz']} px")
    family = advise_family(scaled, evidence)
    return {"size": size, "model": family, "nwd": advise_nwd(scaled, evidence, family["pick"])}
