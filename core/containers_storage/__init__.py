"""containers-storage: layers, images and containers, compatible with containers/storage.

Importing this package is cheap: the store, drivers and archive code load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
