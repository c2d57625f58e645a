"""Experiments of the oja paper (one module per figure or table; shared pieces in common.py)."""
