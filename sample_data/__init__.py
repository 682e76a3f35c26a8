"""Synthetic demo telemetry: a seeded hybrid-cloud AI fleet written in real OTLP wire formats.

The demo, the tests and the benchmarks need data that looks like what Collectors really
write (several framings, old and new semantic-convention names, injected incidents with a
known ground truth), without shipping anyone's production traces.
"""
