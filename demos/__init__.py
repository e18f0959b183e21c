"""Demonstrations: parallel collection and the on-disk dataset (zarr), readable without hrlbc.

``demos.open_dataset(path)`` returns a reader; ``demos.collect.collect(cfg)`` fills a store.
"""

from demos.store import DatasetError, DemoDataset, open_dataset

__all__ = ["DatasetError", "DemoDataset", "open_dataset"]
