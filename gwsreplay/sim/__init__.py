"""A GWS 8.6 simulator: REST API, CometD server and control API in one aiohttp process."""
