"""The package's own errors. Library code raises these; only the CLI turns them into exit codes."""


class GwsReplayError(Exception):
    """Base of every error gwsreplay raises on purpose."""


class UserError(GwsReplayError):
    """An expected failure caused by the user's input or environment: the CLI prints it as one line (exit 2)."""
