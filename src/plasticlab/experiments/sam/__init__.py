"""Experiments of the sam paper (one module per figure or table; shared pieces in common.py)."""
