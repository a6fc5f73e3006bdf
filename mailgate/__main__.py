"""``python -m mailgate``, and the ``mailgate`` command."""

import gc
from typing import NoReturn


def main() -> NoReturn:
    """Start with the cyclic garbage collector off; ``mailgate.cli.main`` turns it back on
    once start-up is done (``started``). Importing SQLAlchemy, Jinja2 and mailgate makes
    a few hundred thousand objects that live as long as the process, and the collector
    walked them again and again while they were being made: about 40 ms of a 0.45 s
    start, on every command."""
    gc.disable()
    from mailgate.cli import run

    run()


if __name__ == "__main__":  # not when a processing child re-imports the parent's main
    main()
