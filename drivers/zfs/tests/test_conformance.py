"""driver-api.md §7 against zfs on a real pool."""

from __future__ import annotations

from containers_storage.testing.conformance import DriverConformance


class TestConformance(DriverConformance):
    #: with zfs-fuse every layer of the chain is written and then cloned at once, which
    #: costs a second per layer (file times are whole seconds: the driver starts a child
    #: in the second after its parent's last write); clone chains have no depth limit
    #: to find, and upstream runs this scenario for zfs not at all
    deep_layers = 64
    supports_quota = True

