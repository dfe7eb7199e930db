"""The ``dhns`` command line (typer)."""
