"""mitmproxy addons: the capture recorder and the Bayeux content view (proxy_addons/ loads them for `mitmdump -s`)."""
