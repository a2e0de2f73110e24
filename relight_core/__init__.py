"""Relight core: cut out a person, relight them to match a new background, composite.

The package root must stay importable without numpy: host adapters (GIMP, Krita) share
`relight_core.client`, which is standard-library only.
"""

__version__ = "0.1.0"
