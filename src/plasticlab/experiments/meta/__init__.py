"""Experiments of the meta paper (one module per figure or table; shared pieces in common.py)."""
