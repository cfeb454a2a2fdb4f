"""Test helpers for driver authors: the conformance kit lives in
:mod:`containers_storage.testing.conformance`."""
