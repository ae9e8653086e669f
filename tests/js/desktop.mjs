// A scripted agent desktop built on the official CometD JavaScript client.
//
// It is our outside referee: Python tests start one process per agent and
// drive it with JSON lines on stdin; it answers with JSON lines on stdout.
// REST goes through Node's fetch with a browser-like cookie jar and the CSRF
// header, CometD through `cometd` + `cometd-nodejs-client`, exactly as the
// GWS JavaScript sample configures it.
//
//   node desktop.mjs --url http://127.0.0.1:8090 --user agent1 --password password
//                    [--transport long-polling|websocket]
//
// Commands (stdin, one JSON object per line, each may carry "tag"):
//   {"cmd":"rest","method":"GET|POST|PUT|DELETE","path":"/api/v2/me","body":{...}}
//   {"cmd":"connect"}                 handshake (after a GET gave the CSRF token)
//   {"cmd":"subscribe","channel":"/v2/me/*"}
//   {"cmd":"unsubscribe","channel":"/v2/me/*"}
//   {"cmd":"disconnect"}
//   {"cmd":"exit"}
// Output (stdout, one JSON object per line):
//   {"event":"ready"}
//   {"event":"rest","tag":..,"status":200,"body":{...}}
//   {"event":"handshake","successful":true,"clientId":"...","transport":"long-polling"}
//   {"event":"subscribe","tag":..,"successful":true,"channel":"/v2/me/*"}
//   {"event":"message","channel":"/v2/me/calls","data":{...}}
//   {"event":"meta","channel":"/meta/connect","successful":false,"error":"..."}
//   {"event":"error","message":"..."}

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import * as ws from "ws";
import * as readline from "node:readline";

function parseArgs(argv) {
    const args = { transport: "long-polling", password: "password" };
    for (let i = 2; i < argv.length; i += 2) {
        args[argv[i].replace(/^--/, "")] = argv[i + 1];
    }
    return args;
}

const args = parseArgs(process.argv);
const baseUrl = args.url.replace(/\/$/, "");

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

// --- a browser-like HTTP session: cookie jar + CSRF token -----------------
const cookies = new Map();
let csrfHeader = null;
let csrfToken = null;

function cookieHeader() {
    return [...cookies.entries()].map(([k, v]) => `${k}=${v}`).join("; ");
}

function storeCookies(response) {
    const setCookies = response.headers.getSetCookie ? response.headers.getSetCookie() : [];
    for (const line of setCookies) {
        const [pair] = line.split(";");
        const eq = pair.indexOf("=");
        if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
}

async function rest(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (args.user && !cookies.has("JSESSIONID")) {
        headers["Authorization"] = "Basic " + Buffer.from(`${args.user}:${args.password}`).toString("base64");
    }
    if (cookies.size) headers["Cookie"] = cookieHeader();
    if (method !== "GET" && csrfHeader) headers[csrfHeader] = csrfToken;
    const init = { method, headers };
    if (body !== undefined && body !== null) {
        headers["Content-Type"] = "application/json";
        init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(baseUrl + path, init);
    storeCookies(response);
    const name = response.headers.get("x-csrf-header");
    if (name) {
        csrfHeader = name;
        csrfToken = response.headers.get("x-csrf-token");
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    return { status: response.status, body: parsed };
}

// --- CometD, configured like the GWS JavaScript sample ---------------------
adapt();
// The Node adapter does not put cookies on the WebSocket upgrade: do what a
// browser does and send the session cookie with it.
window.WebSocket = class extends ws.WebSocket {
    constructor(url, protocols) {
        super(url, protocols, { headers: { Cookie: cookieHeader() } });
    }
};

const cometd = new CometD();
const subscriptions = new Map();

cometd.addListener("/meta/handshake", (m) => {
    emit({ event: "handshake", successful: m.successful, clientId: m.clientId || null,
           transport: cometd.getTransport() ? cometd.getTransport().type : null,
           error: m.error || null });
});
for (const channel of ["/meta/connect", "/meta/disconnect", "/meta/unsuccessful"]) {
    cometd.addListener(channel, (m) => {
        if (!m.successful) emit({ event: "meta", channel: m.channel, successful: false, error: m.error || null });
        else if (channel === "/meta/disconnect") emit({ event: "meta", channel: m.channel, successful: true });
    });
}

function connect() {
    const requestHeaders = {};
    if (csrfHeader) requestHeaders[csrfHeader] = csrfToken;
    // XHR in the Node adapter keeps a "Cookie" request header in its own jar.
    requestHeaders["Cookie"] = cookieHeader();
    if (args.transport === "long-polling") {
        cometd.unregisterTransport("websocket");
    } else {
        cometd.unregisterTransport("long-polling");
    }
    cometd.unregisterTransport("callback-polling");
    cometd.configure({ url: baseUrl + "/api/v2/notifications", logLevel: process.env.COMETD_LOG || "warn", requestHeaders,
                       maxNetworkDelay: 45000 });
    cometd.handshake();
}

function subscribe(channel, tag) {
    const sub = cometd.subscribe(channel, (m) => emit({ event: "message", channel: m.channel, data: m.data }),
        (reply) => emit({ event: "subscribe", tag, channel, successful: reply.successful, error: reply.error || null }));
    subscriptions.set(channel, sub);
}

async function handle(command) {
    const tag = command.tag ?? null;
    switch (command.cmd) {
        case "rest": {
            const result = await rest(command.method || "GET", command.path, command.body);
            emit({ event: "rest", tag, ...result });
            break;
        }
        case "connect": connect(); break;
        case "subscribe": subscribe(command.channel, tag); break;
        case "unsubscribe": {
            const sub = subscriptions.get(command.channel);
            if (sub) cometd.unsubscribe(sub, (reply) => emit({ event: "unsubscribe", tag, successful: reply.successful }));
            subscriptions.delete(command.channel);
            break;
        }
        case "disconnect": cometd.disconnect(() => emit({ event: "disconnected", tag })); break;
        case "exit": process.exit(0);
        default: emit({ event: "error", tag, message: `unknown command ${command.cmd}` });
    }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
    if (!line.trim()) return;
    let command;
    try { command = JSON.parse(line); } catch (e) { emit({ event: "error", message: `bad command: ${line}` }); return; }
    handle(command).catch((e) => emit({ event: "error", tag: command.tag ?? null, message: String(e && e.message || e) }));
});
lines.on("close", () => process.exit(0));
emit({ event: "ready" });
