"""dhns-geo: multimodal knowledge graph completion with Diffusion-based
Hierarchical Negative Sampling (DHNS) on PyTorch Geometric."""

__version__ = "0.3.0.dev0"

from dhns_geo.errors import DHNSError, DataFormatError  # noqa: E402

__all__ = ["__version__", "DHNSError", "DataFormatError"]
