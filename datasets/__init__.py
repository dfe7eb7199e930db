"""PyG datasets: the DB15K, MKG-W and MKG-Y benchmarks and a toy MMKG."""

from dhns_geo.datasets.benchmarks import (DB15K, MKGW, MKGY, OpenKEBenchmark,
                                          default_root)
from dhns_geo.datasets.registry import BENCHMARKS, load_dataset, resolve_name
from dhns_geo.datasets.toy import ToyMMKG, generate_toy_mmkg

__all__ = ["DB15K", "MKGW", "MKGY", "OpenKEBenchmark", "ToyMMKG",
           "BENCHMARKS", "default_root", "generate_toy_mmkg", "load_dataset",
           "resolve_name"]
