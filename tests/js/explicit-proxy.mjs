// Preloaded into a Node desktop (NODE_OPTIONS=--import=.../explicit-proxy.mjs) to send all of
// its HTTPS through an explicit proxy, as a browser configured with a proxy does:
//
//   GWSREPLAY_HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS=mitmproxy-ca-cert.pem \
//   NODE_OPTIONS=--import=./tests/js/explicit-proxy.mjs node tests/js/desktop.mjs --url https://...
//
// - https.request (the CometD adapter's XHR long-polls, and the `ws` WebSocket upgrade) gets an
//   HttpsProxyAgent: a CONNECT tunnel through the proxy, TLS to the proxy's certificate inside
//   (https-proxy-agent drops the host before tls.connect, so an IP target would be checked
//   against "localhost": the identity check is pinned to the real target host instead);
// - fetch (Node's undici, which has no proxy support in Node 20) is replaced by a small fetch
//   over that same https.request, with the few Response members the desktop reads.
// Trust comes from NODE_EXTRA_CA_CERTS only: no certificate check is turned off.

import { createRequire, syncBuiltinESMExports } from "node:module";
import * as tls from "node:tls";
import { HttpsProxyAgent } from "https-proxy-agent";

const require = createRequire(import.meta.url);
const https = require("node:https");
const proxy = process.env.GWSREPLAY_HTTPS_PROXY;

if (proxy) {
    const agent = new HttpsProxyAgent(proxy, { keepAlive: true });
    const original = https.request;
    https.request = function proxiedRequest(...args) {
        // (options[, callback]) or (url, options[, callback]): the options object gets the agent
        const at = typeof args[0] === "string" || args[0] instanceof URL ? 1 : 0;
        if (at === 1 && (typeof args[1] !== "object" || args[1] === null)) args.splice(1, 0, {});
        const target = at === 1 ? new URL(String(args[0])).hostname : (args[0].hostname || args[0].host);
        const host = String(target || "localhost").replace(/^\[(.*)\]$/, "$1");
        args[at] = { ...args[at], agent, checkServerIdentity: (_, cert) => tls.checkServerIdentity(host, cert) };
        return original.apply(this, args);
    };
    syncBuiltinESMExports();   // `import * as https` namespaces see the patched request too

    globalThis.fetch = function proxiedFetch(url, init = {}) {
        return new Promise((resolve, reject) => {
            const request = https.request(new URL(String(url)), {
                method: init.method || "GET", headers: init.headers || {},
            }, (response) => {
                const chunks = [];
                response.on("data", (chunk) => chunks.push(chunk));
                response.on("error", reject);
                response.on("end", () => {
                    const headers = new Headers();
                    for (let i = 0; i < response.rawHeaders.length; i += 2) {
                        headers.append(response.rawHeaders[i], response.rawHeaders[i + 1]);
                    }
                    const text = Buffer.concat(chunks).toString("utf8");
                    resolve({
                        status: response.statusCode, ok: response.statusCode >= 200 && response.statusCode < 300,
                        headers, text: async () => text, json: async () => JSON.parse(text),
                    });
                });
            });
            request.on("error", reject);
            if (init.body !== undefined && init.body !== null) request.write(init.body);
            request.end();
        });
    };
}
