"""Load and spend forecasts and the placement optimizer (arrives with a later issue).

The package exists now so the layout of DESIGN.md holds and its import boundary is tested.
"""
