"""The ``dhns`` typer app; the command modules register on it."""

from __future__ import annotations

from typing import Optional

import typer

from dhns_geo import __version__
from dhns_geo.config import PANELS

app = typer.Typer(
    name="dhns",
    help="Multimodal knowledge graph completion with Diffusion-based "
    "Hierarchical Negative Sampling (DHNS).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dhns-geo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")) -> None:
    """Multimodal KGC with DHNS on PyTorch Geometric."""


class PanelledCommand(typer.core.TyperCommand):
    """A command whose ``--help`` lists its options in named groups (each
    option's ``rich_help_panel``), in plain text: arguments first, then the
    panels in the order of :data:`~dhns_geo.config.PANELS`, then options
    without a panel under "Options"."""

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                name = "Arguments"
            else:
                name = getattr(param, "rich_help_panel", None) or "Options"
            sections.setdefault(name, []).append(record)
        order = [*PANELS, "Options"]
        for name, records in sorted(sections.items(), key=lambda item: (
                order.index(item[0]) if item[0] in order else -1)):
            with formatter.section(name):
                formatter.write_dl(records)
