"""Load replay on Locust: the sans-IO replay engine driven from gevent greenlets.

Beside gwsreplay.drivers (asyncio), never imported by it: Locust monkey-patches
the process with gevent, so this package runs only inside Locust processes.
"""
