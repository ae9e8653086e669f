// One browser running the official CometD JS client with the extensions GWS desktops load:
// AckExtension (acknowledged messages) and ReloadExtension (the vendor's sample loads it).
//
// Same command protocol as desktop.mjs (tests/jsdesktop.py drives both), plus pages and tabs:
//   node ext-desktop.mjs --url URL --user agent1 [--password P] [--transport long-polling|websocket]
//                        [--ack 1] [--reload 1]
//   {"cmd":"rest",...} {"cmd":"connect"} {"cmd":"subscribe","channel":".."} {"cmd":"disconnect"} {"cmd":"exit"}
//   {"cmd":"reload"}   the page reloads: cometd.reload() saves the session in sessionStorage, a new
//                      page (a new CometD object) handshakes, the extension resumes the same clientId,
//                      and the page subscribes again to what it had (as the GWS sample does)
//   {"cmd":"tab"}      a second tab of the same browser: a new CometD object sharing the cookies
//                      (BAYEUX_BROWSER included) handshakes and subscribes to /v2/me/*
// Every event carries "page" (0, 1, ... in order of creation). Additional events:
//   {"event":"connect","page":n,"ext":{...}|null,"advice":{...}|null}   each successful /meta/connect reply
//   {"event":"handshake",...,"ext":{...}|null}

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { AckExtension } from "cometd/AckExtension.js";
import { ReloadExtension } from "cometd/ReloadExtension.js";
import * as ws from "ws";
import * as readline from "node:readline";

const args = { transport: "long-polling", password: "password", ack: "0", reload: "0" };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const baseUrl = args.url.replace(/\/$/, "");
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// --- the browser: cookie jar, CSRF token, sessionStorage -------------------
const cookies = new Map();
let csrfHeader = null;
let csrfToken = null;
const cookieHeader = () => [...cookies.entries()].map(([k, v]) => `${k}=${v}`).join("; ");

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
        init.body = JSON.stringify(body);
    }
    const response = await fetch(baseUrl + path, init);
    for (const line of response.headers.getSetCookie ? response.headers.getSetCookie() : []) {
        const [pair] = line.split(";");
        const eq = pair.indexOf("=");
        if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    if (response.headers.get("x-csrf-header")) {
        csrfHeader = response.headers.get("x-csrf-header");
        csrfToken = response.headers.get("x-csrf-token");
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    return { status: response.status, body: parsed };
}

adapt();
window.WebSocket = class extends ws.WebSocket {
    constructor(url, protocols) { super(url, protocols, { headers: { Cookie: cookieHeader() } }); }
};
const storage = new Map();
window.sessionStorage = {
    getItem: (k) => (storage.has(k) ? storage.get(k) : null),
    setItem: (k, v) => storage.set(k, String(v)),
    removeItem: (k) => storage.delete(k),
};

// --- pages --------------------------------------------------------------
const pages = [];

function newPage() {
    const page = { n: pages.length, cometd: new CometD(), channels: [] };
    pages.push(page);
    const cometd = page.cometd;
    if (args.ack === "1") cometd.registerExtension("ack", new AckExtension());
    if (args.reload === "1") cometd.registerExtension("reload", new ReloadExtension());
    cometd.addListener("/meta/handshake", (m) => emit({
        event: "handshake", page: page.n, successful: m.successful, clientId: m.clientId || null,
        transport: cometd.getTransport() ? cometd.getTransport().type : null, error: m.error || null,
        ext: m.ext || null }));
    cometd.addListener("/meta/connect", (m) => {
        if (m.successful) emit({ event: "connect", page: page.n, ext: m.ext || null, advice: m.advice || null });
        else emit({ event: "meta", page: page.n, channel: m.channel, successful: false, error: m.error || null });
    });
    for (const channel of ["/meta/disconnect", "/meta/unsuccessful"]) {
        cometd.addListener(channel, (m) => emit({ event: "meta", page: page.n, channel: m.channel,
                                                  successful: !!m.successful, error: m.error || null }));
    }
    if (args.transport === "long-polling") cometd.unregisterTransport("websocket");
    else cometd.unregisterTransport("long-polling");
    cometd.unregisterTransport("callback-polling");
    const requestHeaders = { Cookie: cookieHeader() };
    if (csrfHeader) requestHeaders[csrfHeader] = csrfToken;
    cometd.configure({ url: baseUrl + "/api/v2/notifications", logLevel: process.env.COMETD_LOG || "warn",
                       requestHeaders, maxNetworkDelay: 45000 });
    return page;
}

function subscribe(page, channel, tag) {
    if (!page.channels.includes(channel)) page.channels.push(channel);
    page.cometd.subscribe(channel, (m) => emit({ event: "message", page: page.n, channel: m.channel, data: m.data }),
        (reply) => emit({ event: "subscribe", page: page.n, tag, channel, successful: reply.successful,
                          error: reply.error || null }));
}

function current() { return pages[pages.length - 1]; }

async function handle(command) {
    const tag = command.tag ?? null;
    switch (command.cmd) {
        case "rest": emit({ event: "rest", tag, ...(await rest(command.method || "GET", command.path, command.body)) }); break;
        case "connect": (pages.length ? current() : newPage()).cometd.handshake(); break;
        case "subscribe": subscribe(current(), command.channel, tag); break;
        case "reload": {
            const old = current();
            old.cometd.reload();
            const page = newPage();
            page.cometd.handshake((reply) => {
                if (reply.successful) for (const channel of old.channels) subscribe(page, channel, tag);
            });
            break;
        }
        case "tab": {
            const page = newPage();
            page.cometd.handshake((reply) => { if (reply.successful) subscribe(page, "/v2/me/*", tag); });
            break;
        }
        case "disconnect": current().cometd.disconnect(() => emit({ event: "disconnected", tag })); break;
        case "exit": process.exit(0);
        default: emit({ event: "error", tag, message: `unknown command ${command.cmd}` });
    }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
    if (!line.trim()) return;
    let command;
    try { command = JSON.parse(line); } catch { emit({ event: "error", message: `bad command: ${line}` }); return; }
    handle(command).catch((e) => emit({ event: "error", tag: command.tag ?? null, message: String(e && e.message || e) }));
});
lines.on("close", () => process.exit(0));
emit({ event: "ready" });
