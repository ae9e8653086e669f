"""The simulator's network front: aiohttp app, CometD server, control API, the browser desktop."""
