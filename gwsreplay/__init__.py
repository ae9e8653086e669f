"""gwsreplay: record, replay and analyse Genesys Web Services traffic."""

__version__ = "0.1.0"
