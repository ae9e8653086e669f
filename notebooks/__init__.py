"""The analysis notebooks, installed as package data (``gwsreplay.notebooks``).

``gwsreplay report`` runs them from wherever the package is installed, found with
importlib.resources; ``make lab`` opens this folder. analysis/_build_notebooks.py
writes them.
"""
