"""Record GWS REST and CometD traffic into a DuckDB capture file (``mitmdump -s proxy_addons/capture.py``).

    mitmdump -s proxy_addons/capture.py --mode reverse:http://127.0.0.1:8090 \
        --listen-host 127.0.0.1 -p 8080 --set capture_db=captures/NAME.duckdb

The addon lives in the package (gwsreplay.proxy.capture); this file is what mitmproxy loads.
"""

from gwsreplay.proxy.capture import addons  # noqa: F401
