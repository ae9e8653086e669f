"""mitmproxy addons (load with mitmdump -s proxy_addons/capture.py)."""
