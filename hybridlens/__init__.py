"""The hybridlens command line and the scheduled pipeline."""

__version__ = "0.1.0"
