"""Wall-clock timing of several callables, interleaved so that load changes on a shared machine hit all alike."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

MIN_ROUNDS, MAX_ROUNDS = 3, 200


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work (no-op on CPU), so that a timer measures the work itself."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def summary(times: list[float]) -> dict[str, float]:
    """Return median, quartiles, IQR and count of a list of seconds (in milliseconds)."""
    ms = sorted(t * 1e3 for t in times)
    q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0], 0, ms[0])
    return {"median_ms": statistics.median(ms), "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1, "n": len(ms)}


def _call(fn: Callable[[], object], device: torch.device | str) -> float:
    """Return the seconds one call of `fn` takes."""
    t = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t


def _warm(fns: dict[str, Callable[[], object]], device, warmup: int) -> dict[str, float]:
    """Call every callable `warmup` times (at least once) untimed; return the seconds of each one's last call."""
    last = {}
    for name, fn in fns.items():
        for _ in range(max(warmup, 1)):
            last[name] = _call(fn, device)
    return last


def _rounds(
    fns: dict[str, Callable[[], object]],
    times: dict[str, list[float]],
    count: int,
    device,
    settle: float = 0.0,
    lead: int = 0,
) -> None:
    """Run `count` rounds, every callable once per round, appending to `times`; the order is reversed every other
    round (counted over all rounds so far), so that no callable always runs right after the same one or first. Each
    turn may start with a pause of `settle` seconds and `lead` untimed calls (see `measure_until_steady`)."""
    for _ in range(count):
        done = len(next(iter(times.values())))
        order = list(fns.items()) if done % 2 == 0 else list(reversed(fns.items()))
        for name, fn in order:
            if settle:
                time.sleep(settle)
            for _ in range(lead):
                fn()
            times[name].append(_call(fn, device))


def measure(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str = "cpu",
    budget: float = 6.0,
    iters: int | None = None,
    warmup: int = 1,
) -> dict[str, dict[str, float]]:
    """Time every callable after warm-up, round-robin (order reversed every other round), and summarise each.

    Args:
        fns (dict[str, Callable]): Named zero-argument callables.
        device (torch.device | str): Device to synchronise.
        budget (float): Seconds for the timed rounds of all callables together; sets the round count when `iters`
            is None (between MIN_ROUNDS and MAX_ROUNDS).
        iters (int, optional): Fixed number of timed rounds.
        warmup (int): Untimed calls of each callable first, at least one (allocator, oneDNN, autotuning caches).

    Returns:
        (dict[str, dict[str, float]]): `summary` of each callable's times.
    """
    first = _warm(fns, device, warmup)  # the last warm-up call also sizes the rounds
    rounds = iters or int(min(max(budget / max(sum(first.values()), 1e-6), MIN_ROUNDS), MAX_ROUNDS))
    times = {name: [] for name in fns}
    _rounds(fns, times, rounds, device)
    return {name: summary(t) for name, t in times.items()}


def measure_until_steady(
    fns: dict[str, Callable[[], object]],
    spread: float = 0.10,
    min_rounds: int = 20,
    max_rounds: int = 400,
    budget: float | None = None,
    warmup: int = 3,
    device: torch.device | str = "cpu",
    progress: Callable[[int, float], None] | None = None,
    settle: float = 0.0,
    lead: int = 0,
    pairs: dict | None = None,
) -> dict[str, dict[str, float]]:
    """Time callables round by round until every one's IQR is at most `spread` × its median, or a limit is reached.

    With `pairs` ({name: base name}) the rule applies to the paired ratios instead: each named callable's time over
    its base's time in the same round, whose IQR stays small while the whole machine speeds up or slows down (a
    shared virtual machine does, over minutes) and which is what a comparison reads.

    Runtimes keep their worker threads spinning for a while after a call (OpenMP, ONNX Runtime, NCNN), so a call
    made right after another runtime's competes with it for the cores. `settle` pauses before each turn until those
    threads sleep, and `lead` untimed calls then warm the runtime's own threads and caches, so the timed call measures
    the runtime as it runs alone, call after call.

    Args:
        fns (dict[str, Callable]): Named zero-argument callables, timed call by call in turns.
        spread (float): Largest IQR / median accepted for every callable.
        min_rounds (int): Rounds timed before the spread is first checked.
        max_rounds (int): Rounds after which timing stops, steady or not.
        budget (float, optional): Seconds after which timing stops (checked between batches of rounds).
        warmup (int): Untimed calls of each callable first, discarded.
        device (torch.device | str): Device to synchronise.
        progress (Callable[[int, float], None], optional): Called with the rounds so far and the worst IQR / median.
        settle (float): Seconds of pause before each turn.
        lead (int): Untimed calls in each turn before the timed one.
        pairs (dict, optional): {name: base name}: stop on the spread of these paired ratios.

    Returns:
        (dict[str, dict[str, float]]): `summary` of each callable, plus 'spread' (IQR / median) and 'steady' (bool);
            with `pairs`, a paired callable also has 'ratio' (median of its per-round ratios) and 'ratio_spread', and
            'steady' tells whether that spread is within `spread`.
    """
    _warm(fns, device, warmup)
    times = {name: [] for name in fns}
    start, step = time.perf_counter(), max(min_rounds // 2, 1)
    _rounds(fns, times, min_rounds, device, settle, lead)
    while True:
        out = {name: summary(t) for name, t in times.items()}
        for s in out.values():
            s["spread"] = s["iqr_ms"] / s["median_ms"] if s["median_ms"] > 0 else 0.0
            s["steady"] = s["spread"] <= spread
        for name, base in (pairs or {}).items():
            r = summary([a / b for a, b in zip(times[name], times[base])])  # unitless, though named in ms
            out[name]["ratio"], out[name]["ratio_spread"] = r["median_ms"] / 1e3, r["iqr_ms"] / r["median_ms"]
            out[name]["steady"] = out[name]["ratio_spread"] <= spread
        ruled = [s["ratio_spread"] for s in out.values() if "ratio_spread" in s] if pairs else None
        worst = max(ruled or [s["spread"] for s in out.values()])
        if progress:
            progress(len(next(iter(times.values()))), worst)
        done = len(next(iter(times.values())))
        if worst <= spread or done >= max_rounds or (budget is not None and time.perf_counter() - start > budget):
            return out
        _rounds(fns, times, min(step, max_rounds - done), device, settle, lead)
