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
    first = {}
    for name, fn in fns.items():
        for _ in range(max(warmup, 1)):  # the last warm-up call also sizes the rounds
            first[name] = _call(fn, device)
    rounds = iters or int(min(max(budget / max(sum(first.values()), 1e-6), MIN_ROUNDS), MAX_ROUNDS))
    times = {name: [] for name in fns}
    for r in range(rounds):
        order = list(fns.items()) if r % 2 == 0 else list(reversed(fns.items()))  # no callable always goes first
        for name, fn in order:
            times[name].append(_call(fn, device))
    return {name: summary(t) for name, t in times.items()}
