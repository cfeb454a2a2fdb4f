from containers_storage.testing.conformance import DriverConformance
from containers_storage_tiny.driver import TinyDriver


class TestTinyConformance(DriverConformance):
    driver_class = TinyDriver
