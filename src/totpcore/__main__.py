"""``python -m totpcore``: the command line."""

from totpcore.cli import run

run()
