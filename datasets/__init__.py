"""PyG datasets: the DB15K, MKG-W, MKG-Y and FB15k-237 benchmarks and a toy
MMKG."""

from dhns_geo.datasets.benchmarks import (DB15K, MKGW, MKGY, FB15k237,
                                          OpenKEBenchmark, default_root)
from dhns_geo.datasets.registry import BENCHMARKS, load_dataset, resolve_name
from dhns_geo.datasets.toy import ToyMMKG, generate_toy_mmkg

__all__ = ["DB15K", "FB15k237", "MKGW", "MKGY", "OpenKEBenchmark", "ToyMMKG",
           "BENCHMARKS", "default_root", "generate_toy_mmkg", "load_dataset",
           "resolve_name"]
