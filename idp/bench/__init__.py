"""Benchmark ceilings: the cheapest possible endpoints, present only in bench mode.

``make bench`` divides every measured figure by one of these, served by the
same process with the same settings, so a result is a ratio that survives a
noisy machine rather than a lone time.
"""
