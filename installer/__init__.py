"""Relight's one-command installer (`python3 installer/install.py`).

Standard library only: it runs with whatever Python 3.10–3.14 the user has, before any of
the project's dependencies exist.
"""
