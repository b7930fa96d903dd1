"""Benchmarks: each module measures one path against a baseline run the same way."""
