"""Experiments of the hebb paper (one module per figure or table; shared pieces in common.py)."""
