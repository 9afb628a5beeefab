"""Inference fixtures live in tests/conftest.py (tiny_net, bundles), shared with the GUI panel tests."""
