"""Operator-facing subcommands of ``hyperwatch`` (one module per group)."""
