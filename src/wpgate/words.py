"""How counted things read in messages and reports: "1 row", "2 rows", never "1 rows" or "row(s)"."""

from __future__ import annotations

from typing import Any


def plural(count: Any, word: str, many: str | None = None) -> str:
    """`count` and `word`, the word in the plural (`many`, else `word` + s) unless the count is one."""
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"
