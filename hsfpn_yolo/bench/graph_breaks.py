"""Where torch.compile breaks a graph, and whether the break is the package's own or another library's.

Dynamo runs without a backend (`torch._dynamo.explain`), so nothing is compiled. Besides the breaks `explain` lists,
Dynamo's graph-break log is read: after a break inside a loop it runs the whole frame eagerly, and `explain` lists
nothing for it. A break is placed at its innermost frame outside torch (a torch function that breaks counts for the
code calling it) and counts as ours when that frame lies in the package.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def logged_breaks() -> Iterator[list[logging.LogRecord]]:
    """Collect the graph breaks Dynamo logs meanwhile, also those after which it runs a whole frame eagerly."""
    import torch

    log = torch._logging.getArtifactLogger("torch._dynamo.symbolic_convert", "graph_breaks")
    records, handler = [], logging.Handler(logging.DEBUG)
    handler.emit = records.append
    level, propagate = log.level, log.propagate
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def break_site(frames: list[tuple[str, int]]) -> tuple[str, int]:
    """Return the innermost frame of a break outside torch itself: the code whose call into torch broke the graph."""
    import torch

    torch_dir = Path(torch.__file__).resolve().parent
    return next((f for f in reversed(frames) if not Path(f[0]).resolve().is_relative_to(torch_dir)), frames[-1])


def logged_frames(message: str) -> list[tuple[str, int]]:
    """Return the user frames of a logged graph break, outermost first (a repeated break names only its own line)."""
    stack = re.findall(r'File "(.+?)", line (\d+)', message.partition("User code traceback:")[2])
    return [(f, int(n)) for f, n in stack or re.findall(r"in user code at (.+):(\d+)", message)]


def explain(fn: Callable, *args: Any) -> tuple[Any, dict[tuple[str, int], str]]:
    """Run `fn(*args)` under `torch._dynamo.explain`; return the explanation and every break as its site -> reason.

    Raises:
        ValueError: A break that names no frame (it could not be placed).
    """
    import torch

    with logged_breaks() as records:
        explained = torch._dynamo.explain(fn)(*args)
    breaks = {}
    for r in explained.break_reasons:
        if not r.user_stack:
            raise ValueError(f"a graph break without a frame cannot be placed: {r.reason}")
        breaks[break_site([(f.filename, f.lineno) for f in r.user_stack])] = r.reason.splitlines()[0]
    for record in records:
        message = record.getMessage()
        frames = logged_frames(message)
        if not frames:
            raise ValueError(f"a logged graph break without a frame cannot be placed: {message[:300]}")
        reason = message.partition("Graph Break Reason: ")[2]
        if reason.startswith("Failed to handle graph break gracefully"):  # the frame runs eagerly; then the cause
            reason = "frame run eagerly: " + reason.partition("Graph break encountered:")[2].strip()
        breaks.setdefault(break_site(frames), reason.partition("\n")[0])
    return explained, breaks


def split_breaks(breaks: dict[tuple[str, int], str], package: Path = PACKAGE) -> tuple[list[str], list[str]]:
    """Return the breaks as 'file:line: reason', split into those inside `package` and the others.

    Args:
        breaks (dict): `explain`'s breaks.
        package (Path): Folder whose code counts as ours (default this package).
    """
    ours, theirs = [], []
    for (file, line), reason in sorted(breaks.items()):
        (ours if Path(file).resolve().is_relative_to(package) else theirs).append(f"{file}:{line}: {reason}")
    return ours, theirs
