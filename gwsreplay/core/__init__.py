"""The pure GWS/Bayeux core: standard library only, no I/O.

Everything above imports from here; nothing here imports from above (checked by
import-linter in `make test`, see pyproject.toml).
"""
