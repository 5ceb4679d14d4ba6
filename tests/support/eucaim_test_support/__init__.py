"""Test support shared by the node's test suites (never shipped: the image copies only libs/ and services/).

On the import path of every test through ``pythonpath`` in the root pyproject's pytest settings.
"""
