"""asyncio drivers of the sans-IO replay engine: the replay runner, the mock GWS, the replay output file."""
