"""``python -m mailgate``: the same as the ``mailgate`` command."""

from mailgate.cli import run

if __name__ == "__main__":  # not when a processing child re-imports the parent's main
    run()
