"""The multimodal KGC benchmarks DB15K, MKG-W and MKG-Y as PyG datasets."""

from __future__ import annotations

import os
import os.path as osp
from pathlib import Path

from torch_geometric.data import HeteroData, InMemoryDataset, download_url

from dhns_geo.data.features import attach_benchmark_features, feature_files_key
from dhns_geo.data.io import OPENKE_FILES, read_openke
from dhns_geo.data.mmkg import to_hetero_data

#: Commit of github.com/ngl567/DHNS whose ``benchmarks/`` folder is used.
DHNS_COMMIT = "02d8de0d321016798717fc1fce7c3b41f544eee5"


def default_root() -> Path:
    """``$DHNS_DATA`` when set, else ``~/.cache/dhns-geo``."""
    return Path(os.environ.get("DHNS_DATA",
                               Path.home() / ".cache" / "dhns-geo")).expanduser()


class OpenKEBenchmark(InMemoryDataset):
    r"""Base class of the OpenKE-format benchmarks of the DHNS paper.

    Files live in ``<root>/<name>/raw``; when they are all there the download
    is skipped, so the dataset works offline. Otherwise they are fetched from
    the DHNS authors' repository (``benchmarks/<name>/``).

    The single graph is a :class:`~torch_geometric.data.HeteroData` in the
    layout of :mod:`dhns_geo.data.mmkg`.

    Modality features are taken from the raw folder when present: the
    papers' ``<name>-visual.pth`` / ``<name>-textual.pth`` (checked against
    their published sha256, see :mod:`dhns_geo.data.features`), else the
    textual features written by ``dhns features text``. Adding or changing
    a feature file makes the dataset re-process.

    Args:
        root: Root folder (default: :func:`default_root`).
        transform: Applied on every access.
        pre_transform: Applied once before saving.
        force_reload: Re-process even if a processed file exists.
        trust_features: Use paper feature files whose hash differs from the
            published one (recorded as unverified) instead of failing.
    """

    name: str = ""
    url = ("https://raw.githubusercontent.com/ngl567/DHNS/" + DHNS_COMMIT +
           "/benchmarks/{name}/{file}")

    def __init__(self, root: str | Path | None = None, transform=None,
                 pre_transform=None, force_reload: bool = False,
                 trust_features: bool = False) -> None:
        root = Path(root).expanduser() if root is not None else default_root()
        self.trust_features = trust_features
        super().__init__(str(root / self.name), transform, pre_transform,
                         force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def raw_file_names(self) -> list[str]:
        return list(OPENKE_FILES)

    @property
    def processed_file_names(self) -> list[str]:
        key = feature_files_key(self.raw_dir, self.name, self.trust_features)
        return [f"data-{key}.pt"]

    def download(self) -> None:
        for file in self.raw_file_names:
            if not osp.exists(osp.join(self.raw_dir, file)):
                download_url(self.url.format(name=self.name, file=file),
                             self.raw_dir)

    def process(self) -> None:
        data = to_hetero_data(read_openke(self.raw_dir))
        attach_benchmark_features(data, self.raw_dir, self.name,
                                  self.trust_features)
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])


class DB15K(OpenKEBenchmark):
    """DB15K: 12,842 entities, 279 relations (DBpedia)."""

    name = "DB15K"


class MKGW(OpenKEBenchmark):
    """MKG-W: 15,000 entities, 169 relations (Wikidata)."""

    name = "MKG-W"


class MKGY(OpenKEBenchmark):
    """MKG-Y: 15,000 entities, 28 relations (YAGO)."""

    name = "MKG-Y"
