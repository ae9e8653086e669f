"""Bayeux codec, asyncio CometD client drivers, GWS REST client and scripted desktops."""
