"""The KGC benchmarks as PyG datasets: the multimodal DB15K, MKG-W and MKG-Y
and the structural FB15k-237."""

from __future__ import annotations

import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Callable

from torch_geometric.data import (HeteroData, InMemoryDataset, download_url,
                                  extract_tar)

from dhns_geo.data.features import (attach_benchmark_features, feature_files_key,
                                    file_sha256)
from dhns_geo.data.io import OPENKE_FILES, read_openke, read_tsv
from dhns_geo.errors import DataFormatError
from dhns_geo.run_folder import RunLock
from dhns_geo.data.mmkg import to_hetero_data

#: Commit of github.com/ngl567/DHNS whose ``benchmarks/`` folder is used.
DHNS_COMMIT = "02d8de0d321016798717fc1fce7c3b41f544eee5"


def default_root() -> Path:
    """``$DHNS_DATA`` when set, else ``~/.cache/dhns-geo``."""
    return Path(os.environ.get("DHNS_DATA",
                               Path.home() / ".cache" / "dhns-geo")).expanduser()


class KGBenchmark(InMemoryDataset):
    r"""Base class of the built-in benchmarks: one graph, read from
    ``<root>/<name>/raw``; when the :attr:`raw_files` are all there the
    download is skipped, so the dataset works offline.

    The single graph is a :class:`~torch_geometric.data.HeteroData` in the
    layout of :mod:`dhns_geo.data.mmkg`.

    Args:
        root: Root folder (default: :func:`default_root`).
        transform: Applied on every access.
        pre_transform: Applied once before saving.
        force_reload: Re-process even if a processed file exists.
        trust_features: Use paper feature files whose hash differs from the
            published one (recorded as unverified) instead of failing.
    """

    name: str = ""
    #: The files of ``raw/`` (all there: no download).
    raw_files: tuple[str, ...] = ()

    def __init__(self, root: str | Path | None = None,
                 transform: Callable | None = None,
                 pre_transform: Callable | None = None, force_reload: bool = False,
                 trust_features: bool = False) -> None:
        root = Path(root).expanduser() if root is not None else default_root()
        self.trust_features = trust_features
        # One process at a time processes and reads the folder: runs started
        # together would otherwise read each other's half-written files.
        with RunLock(root / self.name, wait=True):
            super().__init__(str(root / self.name), transform, pre_transform,
                             force_reload=force_reload)
            self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def raw_file_names(self) -> list[str]:
        return list(self.raw_files)


class OpenKEBenchmark(KGBenchmark):
    r"""Base class of the OpenKE-format benchmarks of the DHNS paper, fetched
    from the DHNS authors' repository (``benchmarks/<name>/``) when absent.

    Modality features are taken from the raw folder when present: the
    papers' ``<name>-visual.pth`` / ``<name>-textual.pth`` (checked against
    their published sha256, see :mod:`dhns_geo.data.features`), else the
    textual features written by ``dhns features text``. Adding or changing
    a feature file makes the dataset re-process.
    """

    raw_files = OPENKE_FILES
    url = ("https://raw.githubusercontent.com/ngl567/DHNS/" + DHNS_COMMIT +
           "/benchmarks/{name}/{file}")

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


#: Commit of github.com/TimDettmers/ConvE whose ``FB15k-237.tar.gz`` is used.
CONVE_COMMIT = "9e3ad48b3f7bdf1f512dca1723b77bce500508e1"

#: sha256 of the three files of FB15k-237 as published (Toutanova & Chen,
#: 2015; valid and test byte-identical to the RotatE authors' copies).
FB15K237_SHA256 = {
    "train.txt": "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
    "valid.txt": "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
    "test.txt": "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
}


class FB15k237(KGBenchmark):
    r"""FB15k-237 (Toutanova & Chen, 2015): 14,541 entities, 237 relations,
    272,115 / 17,535 / 20,466 train / valid / test triples, structure only.

    Reads ``train.txt``, ``valid.txt`` and ``test.txt`` (``head<TAB>relation
    <TAB>tail`` Freebase names) from ``<root>/FB15k-237/raw``; when they are
    absent, downloads the ConvE authors' ``FB15k-237.tar.gz`` at a pinned
    commit. Each file is checked against its published sha256. The
    vocabulary is built over the three splits (valid and test hold entities that
    never occur in train: 36 entities), as PyG, PyKEEN and the RotatE code build it.

    Args: as :class:`KGBenchmark` (there are no feature files to trust).
    """

    name = "FB15k-237"
    raw_files = tuple(FB15K237_SHA256)
    url = ("https://github.com/TimDettmers/ConvE/raw/" + CONVE_COMMIT +
           "/FB15k-237.tar.gz")

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt"]

    def download(self) -> None:
        archive = download_url(self.url, self.raw_dir)
        extract_tar(archive, self.raw_dir)
        os.unlink(archive)
        for file in self.raw_file_names:     # the archive may hold a folder
            if not osp.exists(osp.join(self.raw_dir, file)):
                found = sorted(Path(self.raw_dir).rglob(file))
                if not found:
                    raise DataFormatError(archive, f"holds no {file}")
                shutil.move(str(found[0]), osp.join(self.raw_dir, file))

    def process(self) -> None:
        for file, digest in FB15K237_SHA256.items():
            path = Path(self.raw_dir) / file
            if file_sha256(path) != digest:
                raise DataFormatError(path, f"sha256 differs from the published "
                                      f"file's ({digest[:12]}...)")
        data = to_hetero_data(read_tsv(self.raw_dir))
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])
