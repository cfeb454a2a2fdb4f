from containers_storage.testing.conformance import DriverConformance


class TestVFSConformance(DriverConformance):
    deep_layers = 200
    diff_apply_files = 100
