"""`--waves 1,10%,100%`: cumulative sizes (a count of sites or a share of the group) into the planned waves."""

from __future__ import annotations

import math
import re

from wpgate.errors import BadInput

DEFAULT = "1,10%,100%"
_COUNT = re.compile(r"[1-9][0-9]*")
_SHARE = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")


def sizes(text: str, total: int) -> list[int]:
    """The cumulative size of each wave. Counts must grow; a share that rounds (up) to a size already reached
    adds no wave (10% of 6 sites is the 1 site of the canary). The last wave reaches the whole group."""
    if total < 1:
        raise BadInput("the group has no site to deploy")
    items = [item.strip() for item in text.split(",")]
    result: list[int] = []
    previous_written: tuple[str, float] | None = None
    for item in items:
        if _COUNT.fullmatch(item):
            written = ("count", float(item))
            size = int(item)
        elif (match := _SHARE.fullmatch(item)) and 0 < float(match.group(1)) <= 100:
            written = ("share", float(match.group(1)))
            size = max(1, math.ceil(float(match.group(1)) * total / 100 - 1e-9))
        else:
            raise BadInput(f"--waves {text}: {item!r} is neither a count of sites (1, 2, …) nor a share of the "
                           "group (1% to 100%)")
        if size > total:
            raise BadInput(f"--waves {text}: {item} exceeds the group's {total} sites")
        if previous_written and previous_written[0] == written[0] and written[1] <= previous_written[1]:
            raise BadInput(f"--waves {text}: the waves must grow ({item} after {_show(previous_written)}): "
                           "each size counts every site deployed so far")
        if result and size < result[-1] or (result and size == result[-1] and written[0] == "count"):
            raise BadInput(f"--waves {text}: the waves must grow ({item} is {size} sites, after {result[-1]}): "
                           "each size counts every site deployed so far")
        previous_written = written
        if not result or size > result[-1]:
            result.append(size)
    if result[-1] != total:
        raise BadInput(f"--waves {text}: the last wave reaches {result[-1]} of the group's {total} sites: "
                       "end with 100% (or the group's size)")
    return result


def plan(sites: list[str], text: str) -> list[list[str]]:
    """The sites of each wave, in the group's order."""
    bounds = sizes(text, len(sites))
    return [sites[start:end] for start, end in zip([0] + bounds, bounds)]


def _show(written: tuple[str, float]) -> str:
    kind, value = written
    number = f"{value:g}"
    return f"{number}%" if kind == "share" else number
