"""Helpers shared by the test folders (importable as ``testkit``)."""
