"""Replay engine: against a GWS, as a mock GWS, and under load."""
