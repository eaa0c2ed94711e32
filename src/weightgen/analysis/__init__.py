"""Analyses and figures of generated networks (the paper's section 4 and beyond)."""
