"""Forward only to listed upstream hosts (``mitmdump -s proxy_addons/allow_hosts.py``).

    mitmdump -s proxy_addons/allow_hosts.py -s proxy_addons/capture.py --mode regular \
        --listen-host 127.0.0.1 -p 8080 --set proxy_allow_hosts=gws.example.com:443 \
        --set capture_db=captures/NAME.duckdb

The addon lives in the package (gwsreplay.proxy.allow_hosts); this file is what mitmproxy loads.
Load it before capture.py, so refused requests are not recorded as exchanges.
"""

from gwsreplay.proxy.allow_hosts import addons  # noqa: F401
