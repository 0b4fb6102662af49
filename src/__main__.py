"""The ``calcmcp`` command (also ``python -m src``)."""

from __future__ import annotations

import sys


def main() -> int:
    """Run the command line; ``stdio`` first trims what it does not need from start-up."""
    if sys.argv[1:2] == ["stdio"]:
        # dependency-injector imports optional integrations whenever they are installed
        # (werkzeug for Flask, PyYAML for YAML configuration): stdio uses neither, and a
        # desktop client pays for every millisecond of its start-up (~45 ms here).
        for optional in ("werkzeug", "yaml"):
            sys.modules.setdefault(optional, None)  # type: ignore[arg-type]
    from src.bootstrap import main as run  # noqa: PLC0415 - after the trimming above

    return run()


if __name__ == "__main__":
    sys.exit(main())
