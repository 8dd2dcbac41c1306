"""Summarise a py-spy `--format raw` (collapsed stacks) profile: top functions by self and inclusive time.

`run.py --profile DIR` records one per process under test at concurrency 16; this prints what
RESULTS.md quotes. Frames are `function (file:line)`; the line number is dropped so one
function's samples add up, and file paths are shortened to the package-relative part.

Usage: python profile_summary.py DIR/gateway-c16.txt [--top 25] [--filter aigateway]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "lib/python3", "layers/gateway/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['fn']} ({path})"


def _package(frame: str) -> str:
    """The top-level package a (shortened) frame belongs to: `aigateway`, `fastapi`, `asyncio`..."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    if not path or path.startswith("<"):
        return "other"
    return path.split("/")[0].removesuffix(".py")


def summarise(path: str, top: int, only: str | None) -> str:
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_pkg: Counter[str] = Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [_short(f) for f in stack.split(";")]
            self_t[frames[-1]] += n
            by_pkg[_package(frames[-1])] += n
            for f in set(frames):
                incl[f] += n
    out = [f"{total} samples", "", "Self time by package:"]
    out += [f"{100 * n / total:6.1f}%  {name}" for name, n in by_pkg.most_common(12)]
    for title, counter in (("self", self_t), ("inclusive", incl)):
        out.append(f"\nTop {top} by {title} time:")
        shown = 0
        for name, n in counter.most_common():
            if only and only not in name:
                continue
            out.append(f"{100 * n / total:6.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--filter", default=None)
    a = p.parse_args()
    print(summarise(a.profile, a.top, a.filter))
