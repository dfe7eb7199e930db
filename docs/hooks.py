"""MkDocs hooks: the figures under ``benchmarks/results`` are served as
``figures/...``, so result pages show the plots the benchmarks write
without a copy of them in ``docs/``; a page's ``<!-- presets -->`` line
becomes the table of :data:`dhns_geo.presets.PRESETS`."""

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*.png")):
        relative = path.relative_to(RESULTS).as_posix()
        files.append(File.generated(config, f"figures/{relative}",
                                    abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "<!-- presets -->" in markdown:
        from dhns_geo.presets import presets_markdown
        markdown = markdown.replace("<!-- presets -->", presets_markdown())
    return markdown
