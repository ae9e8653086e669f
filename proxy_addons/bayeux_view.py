"""A mitmproxy content view that pretty-prints Bayeux (CometD) messages (``mitmweb -s proxy_addons/bayeux_view.py``).

The view lives in the package (gwsreplay.proxy.bayeux_view); this file is what mitmproxy loads.
"""

from gwsreplay.proxy.bayeux_view import addons  # noqa: F401
