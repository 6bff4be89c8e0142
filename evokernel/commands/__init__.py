"""CLI sub-commands, discovered by evokernel.cli.

Each module defines ``ORDER`` (its place in ``--help``) and ``register(subparsers)``, which adds a
parser and sets ``run=<function(args) -> exit code>`` as its default. register imports nothing heavy.
"""
