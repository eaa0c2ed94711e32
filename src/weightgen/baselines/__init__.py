"""Comparison methods that produce networks in the same exchange format."""
