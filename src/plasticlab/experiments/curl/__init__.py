"""Experiments of the curl paper (one module per figure or table; shared pieces in common.py)."""
