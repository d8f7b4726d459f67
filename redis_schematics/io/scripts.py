"""The registry of ``scripts/*.lua``: each script's source and SHA1, read once.

Drivers call scripts by name with EVALSHA and load a script (SCRIPT LOAD) only when the
server answers NOSCRIPT (a new server, a restart, SCRIPT FLUSH, a failover).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Script:
    """One script: its ``name`` (file ``scripts/<name>.lua``), ``source`` and ``sha``."""

    name: str
    source: str
    sha: str


_SCRIPTS: dict[str, Script] = {}


def script(name: str) -> Script:
    """The script ``scripts/<name>.lua``.

    Raises:
        FileNotFoundError: there is no such script (a bug, not a user error).
    """
    found = _SCRIPTS.get(name)
    if found is None:
        path = resources.files("redis_schematics") / "scripts" / f"{name}.lua"
        source = path.read_text(encoding="utf-8")
        found = _SCRIPTS[name] = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
    return found
