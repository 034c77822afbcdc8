"""wpgate: replicate the WordPress updates tested on staging onto production, one gate at a time.

The library's names (`Project`, `RunResult`, `WpgateError`, `ConfigError`, `ExitStatus`) are imported on first
use, so that `import wpgate` (every wpgate process starts with it) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Project": "wpgate.project",
    "RunResult": "wpgate.project",
    "WpgateError": "wpgate.errors",
    "ConfigError": "wpgate.errors",
    "ExitStatus": "wpgate.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from wpgate.errors import ConfigError, ExitStatus, WpgateError
    from wpgate.project import Project, RunResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wpgate' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
