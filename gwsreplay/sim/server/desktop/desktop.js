// gwsreplay agent desktop: a small GWS 8.6 voice desktop in plain JavaScript.
//
// REST goes through fetch() with the browser's cookie jar (JSESSIONID) and the
// CSRF token taken from GET answers; notifications come from the official
// CometD library (node_modules/cometd, served by the simulator under
// ./vendor/cometd/), configured the way the GWS JavaScript sample does:
// requestHeaders carry the CSRF token, one subscription to /v2/me/*.
//
// Tests read window.gwsDesktop (notifications, operations) and the stable
// ids / data-testid attributes of index.html. See docs/desktop.md.

import { CometD } from "./vendor/cometd/cometd.js";

const VOICE_CHANNEL = "/api/v2/me/channels/voice";
const LOG_LIMIT = 500;           // log entries kept in the page (window.gwsDesktop keeps all)
const ENDED_CALLS_KEPT = 3;      // released calls left on screen
const DISCONNECT_TIMEOUT_MS = 5000;

// Agent-state buttons: element id -> [operationName, the agent state it leads to].
// GWS reports After Call Work as state NotReady + workMode AfterCallWork; agentStateOf()
// folds the two into one name so each button knows when it has nothing to do.
const STATE_BUTTONS = {
    "btn-ready": ["Ready", "Ready"],
    "btn-not-ready": ["NotReady", "NotReady"],
    "btn-acw": ["AfterCallWork", "AfterCallWork"],
};

function agentStateOf(userState) {
    if (!userState || !userState.state) return "";
    if (userState.state === "NotReady" && userState.workMode === "AfterCallWork") return "AfterCallWork";
    return userState.state;
}

const $ = (id) => document.getElementById(id);

function base64(text) {
    // btoa() only takes Latin-1: encode as UTF-8 first, as browsers do for Basic auth.
    return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function clock(date = new Date()) {
    return date.toTimeString().slice(0, 8) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

// ---------------------------------------------------------------- REST session

/** One agent's HTTP session: Basic auth on the first request, then the cookie; CSRF on unsafe methods. */
class GwsRest {
    constructor(baseUrl, user, password) {
        this.baseUrl = baseUrl;
        this.user = user;
        this.password = password;
        this.csrf = null; // {header, token}, from the last GET that carried one
    }

    async request(method, path, body, { basic = false } = {}) {
        const headers = { "Accept": "application/json" };
        if (basic) headers["Authorization"] = "Basic " + base64(`${this.user}:${this.password}`);
        if (method !== "GET" && this.csrf) headers[this.csrf.header] = this.csrf.token;
        const init = { method, headers, credentials: "include", cache: "no-store" };
        if (body !== undefined) {
            headers["Content-Type"] = "application/json";
            init.body = JSON.stringify(body);
        }
        const response = await fetch(this.baseUrl + path, init);
        const csrfHeader = response.headers.get("X-CSRF-HEADER");
        if (csrfHeader) this.csrf = { header: csrfHeader, token: response.headers.get("X-CSRF-TOKEN") };
        const text = await response.text();
        let parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
        return { status: response.status, body: parsed };
    }

    get(path) { return this.request("GET", path); }
    post(path, body) { return this.request("POST", path, body); }
}

// ---------------------------------------------------------------- the desktop

class Desktop {
    constructor() {
        this.rest = null;
        this.cometd = null;
        this.transport = "long-polling";
        this.device = null;             // latest device resource
        this.calls = new Map();         // call id -> latest call resource (insertion order = arrival)
        this.loggedIn = false;
        // For tests and curious people (window.gwsDesktop):
        this.notifications = [];        // every /v2/me/* message, in arrival order: {channel, data}
        this.operations = [];           // every operation sent: {operation, path, status, statusCode}
        this.status = "disconnected";
        this._logCount = 0;
    }

    // ---- login / logout ------------------------------------------------

    async login({ user, password, baseUrl, transport }) {
        this.transport = transport;
        this.rest = new GwsRest(baseUrl.replace(/\/+$/, ""), user, password);
        this.calls.clear();
        this.device = null;

        // 1. The first GET authenticates (Basic), creates the session cookie, gives the CSRF token.
        const me = await this.rest.request("GET", "/api/v2/me", undefined, { basic: true });
        if (me.status !== 200) throw new Error(describeFailure("Log in", me));

        // 2. CometD, as the GWS JavaScript sample: CSRF token in requestHeaders, subscribe /v2/me/*.
        await this.connectCometd();

        // 3. The contact-center session, then the device it gives us.
        await this.operation("/api/v2/me", "StartContactCenterSession", { channels: ["voice"] });
        const devices = await this.rest.get("/api/v2/me/devices?fields=*");
        if (devices.status === 200 && devices.body && devices.body.devices && devices.body.devices.length) {
            this.device = devices.body.devices[0];
        }
        const calls = await this.rest.get("/api/v2/me/calls?fields=*");
        if (calls.status === 200 && calls.body && Array.isArray(calls.body.calls)) {
            for (const call of calls.body.calls) if (!this.calls.has(call.id)) this.calls.set(call.id, call);
        }
        this.loggedIn = true;
        $("agent-user").textContent = user;
        $("who").textContent = `${user} @ ${this.rest.baseUrl}`;
        $("agent-transport").textContent = transport;
        this.render();
    }

    connectCometd() {
        const cometd = new CometD();
        this.cometd = cometd;
        // Only the chosen transport: no silent fallback from websocket to long-polling.
        for (const type of cometd.getTransportTypes()) {
            if (type !== this.transport) cometd.unregisterTransport(type);
        }
        const requestHeaders = {};
        if (this.rest.csrf) requestHeaders[this.rest.csrf.header] = this.rest.csrf.token;
        cometd.configure({
            url: this.rest.baseUrl + "/api/v2/notifications",
            logLevel: "warn",
            requestHeaders,
        });

        cometd.addListener("/meta/connect", (m) => {
            if (cometd.isDisconnected()) return;
            this.setStatus(m.successful ? "connected" : "reconnecting");
        });
        cometd.addListener("/meta/disconnect", () => this.setStatus("disconnected"));
        cometd.addListener("/meta/unsuccessful", (m) => this.logLine("meta", `${m.channel} failed: ${m.error || "network"}`));

        return new Promise((resolve, reject) => {
            let first = true;
            // Subscriptions do not survive a re-handshake (CometD clears them): subscribe on every handshake.
            cometd.addListener("/meta/handshake", (reply) => {
                if (!reply.successful) {
                    this.setStatus("reconnecting");
                    if (first) { first = false; reject(new Error(`CometD handshake failed: ${reply.error || "network error"}`)); }
                    return;
                }
                this.setStatus("connected");
                cometd.subscribe("/v2/me/*", (message) => this.onNotification(message), (sub) => {
                    if (!first) return;
                    first = false;
                    if (sub.successful) resolve();
                    else reject(new Error(`subscribe /v2/me/* failed: ${sub.error || "network error"}`));
                });
            });
            this.setStatus("connecting");
            cometd.handshake();
        });
    }

    async logout() {
        // As the GWS sample: disconnect CometD first, then end the contact-center session.
        if (this.cometd && !this.cometd.isDisconnected()) {
            const cometd = this.cometd;
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, DISCONNECT_TIMEOUT_MS);
                cometd.disconnect(() => { clearTimeout(timer); resolve(); });
            });
        }
        this.setStatus("disconnected");
        await this.operation("/api/v2/me", "EndContactCenterSession");
        this.loggedIn = false;
        this.cometd = null;
    }

    // ---- operations ----------------------------------------------------

    async operation(path, operationName, params = {}) {
        const response = await this.rest.post(path, { operationName, ...params });
        const statusCode = response.body && typeof response.body === "object" ? response.body.statusCode : undefined;
        const record = { operation: operationName, path, status: response.status, statusCode: statusCode ?? null };
        this.operations.push(record);
        const ok = response.status === 200 && (statusCode === 0 || statusCode === 7);
        this.logLine("operation", `${operationName} → ${response.status}${ok ? "" : " " + describeBody(response.body)}`,
                     { ok, operation: operationName });
        if (!ok) throw new Error(describeFailure(operationName, response));
        return response;
    }

    agentState(operationName) {
        return this.operation(VOICE_CHANNEL, operationName);
    }

    dial(number) {
        return this.operation(`/api/v2/me/devices/${encodeURIComponent(this.device.id)}/calls`, "Dial",
                              { destination: { phoneNumber: number } });
    }

    callOperation(callId, operationName, destination) {
        const params = destination ? { destination: { phoneNumber: destination } } : {};
        return this.operation(`/api/v2/me/calls/${encodeURIComponent(callId)}`, operationName, params);
    }

    // ---- notifications -------------------------------------------------

    onNotification(message) {
        const data = message.data || {};
        this.notifications.push({ channel: message.channel, data });
        if (data.messageType === "DeviceStateChangeMessage" && Array.isArray(data.devices) && data.devices.length) {
            this.device = data.devices[0];
        } else if (data.messageType === "CallStateChangeMessage" && data.call) {
            this.calls.delete(data.call.id); // re-insert: most recent activity last
            this.calls.set(data.call.id, data.call);
            this.forgetOldCalls();
        }
        this.logNotification(message.channel, data);
        this.render();
    }

    forgetOldCalls() {
        const ended = [...this.calls.values()].filter((c) => c.state === "Released");
        for (const call of ended.slice(0, Math.max(0, ended.length - ENDED_CALLS_KEPT))) this.calls.delete(call.id);
    }

    // ---- rendering -----------------------------------------------------

    setStatus(status) {
        this.status = status;
        const badge = $("connection-status");
        badge.textContent = status === "connected" ? `connected (${this.transport})` : status;
        badge.dataset.status = status;
    }

    render() {
        const userState = (this.device && this.device.userState) || {};
        const state = $("agent-state");
        const agentState = agentStateOf(userState);
        state.textContent = userState.displayName || userState.state || "–";
        state.dataset.state = userState.state || "";         // as GWS says: Ready, NotReady, LoggedOut...
        state.dataset.workMode = userState.workMode || "";   // AfterCallWork, AuxWork...
        state.dataset.agentState = agentState;               // the two folded: Ready, NotReady, AfterCallWork...
        $("agent-phone").textContent = (this.device && this.device.phoneNumber) || "";
        $("agent-device").textContent = (this.device && this.device.id) || "";

        for (const [id, [, target]] of Object.entries(STATE_BUTTONS)) {
            $(id).disabled = !this.loggedIn || agentState === target;
        }
        $("btn-dial").disabled = !this.loggedIn || !this.device;
        $("btn-logout").disabled = !this.loggedIn;
        this.renderCalls();
    }

    renderCalls() {
        const list = $("calls");
        const template = $("call-template");
        const seen = new Set();
        for (const call of this.calls.values()) {
            seen.add(call.id);
            let item = list.querySelector(`li[data-call-id="${CSS.escape(call.id)}"]`);
            if (!item) {
                item = template.content.firstElementChild.cloneNode(true);
                item.dataset.callId = call.id;
                for (const button of item.querySelectorAll("button[data-op]")) {
                    button.addEventListener("click", () => this.onCallButton(call.id, button, item));
                }
            }
            list.appendChild(item); // keeps the on-screen order equal to this.calls
            const capabilities = new Set(call.capabilities || []);
            item.dataset.state = call.state || "";
            item.classList.toggle("released", call.state === "Released");
            const stateEl = item.querySelector(".call-state");
            stateEl.textContent = call.state || "?";
            stateEl.dataset.state = call.state || "";
            item.querySelector(".call-type").textContent = call.callType || "";
            item.querySelector(".call-parties").textContent = partiesOf(call);
            item.querySelector(".call-id").textContent = call.id;
            for (const button of item.querySelectorAll("button[data-op]")) {
                button.disabled = !capabilities.has(button.dataset.op);
            }
            item.querySelector(".call-destination").disabled = call.state === "Released";
        }
        for (const item of [...list.children]) {
            if (!seen.has(item.dataset.callId)) item.remove();
        }
        const active = [...this.calls.values()].filter((c) => c.state !== "Released").length;
        $("call-count").textContent = String(active);
        $("no-calls").hidden = this.calls.size > 0;
    }

    async onCallButton(callId, button, item) {
        const operationName = button.dataset.op;
        let destination;
        if (operationName === "SingleStepTransfer" || operationName === "SingleStepConference") {
            destination = item.querySelector(".call-destination").value.trim();
            if (!destination) { showError(`${button.textContent}: enter a number first`); return; }
        }
        await guarded(() => this.callOperation(callId, operationName, destination));
    }

    logNotification(channel, data) {
        const summary = summarize(data);
        this._logCount += 1;
        $("log-count").textContent = String(this._logCount);
        this.logLine("notification", summary, { channel, data });
    }

    logLine(kind, text, { channel, data, ok, operation } = {}) {
        const item = document.createElement("li");
        item.className = `log-entry ${kind}` + (ok === false ? " failed" : "");
        item.dataset.testid = "log-entry";
        item.dataset.kind = kind;
        if (channel) item.dataset.channel = channel;
        if (data && data.messageType) item.dataset.messageType = data.messageType;
        if (operation) item.dataset.operation = operation;

        const head = document.createElement(data ? "summary" : "div");
        const time = document.createElement("span");
        time.className = "time";
        time.textContent = clock();
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = kind === "notification" ? channel : kind === "operation" ? "request" : kind;
        const body = document.createElement("span");
        body.className = "text";
        body.textContent = text;
        head.append(time, label, body);
        if (data) {
            const details = document.createElement("details");
            const pre = document.createElement("pre");
            pre.textContent = JSON.stringify(data, null, 2);
            details.append(head, pre);
            item.append(details);
        } else {
            item.append(head);
        }
        const log = $("log");
        log.prepend(item);
        while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
    }
}

// ---------------------------------------------------------------- helpers

function partiesOf(call) {
    const parties = (call.participants || []).map((p) => p.formattedPhoneNumber || p.phoneNumber || p.digits || "?");
    return parties.length ? "with " + parties.join(", ") : "";
}

function summarize(data) {
    switch (data.messageType) {
        case "CallStateChangeMessage": {
            const call = data.call || {};
            return `${data.notificationType || "?"}: call ${String(call.id || "").slice(-6)} ${call.state || ""} ${partiesOf(call)}`.trim();
        }
        case "DeviceStateChangeMessage": {
            const device = (data.devices || [])[0] || {};
            const userState = device.userState || {};
            return `device ${device.phoneNumber || ""}: ${userState.displayName || userState.state || "?"}`;
        }
        case "ErrorMessage":
            return `error: ${data.errorMessage || JSON.stringify(data)}`;
        default:
            return data.messageType || JSON.stringify(data).slice(0, 120);
    }
}

function describeBody(body) {
    if (body && typeof body === "object") return `statusCode ${body.statusCode}: ${body.statusMessage || ""}`.trim();
    return String(body || "").slice(0, 200);
}

function describeFailure(what, response) {
    return `${what} failed: HTTP ${response.status} ${describeBody(response.body)}`;
}

function showError(text) {
    const el = $("op-error");
    el.textContent = text;
    el.hidden = !text;
}

async function guarded(action) {
    showError("");
    try {
        await action();
    } catch (error) {
        showError(error.message || String(error));
    }
}

// ---------------------------------------------------------------- wiring

const desktop = new Desktop();
window.gwsDesktop = desktop;

function showDesktop(visible) {
    $("login-panel").hidden = visible;
    $("desktop").hidden = !visible;
    document.body.dataset.loggedIn = visible ? "true" : "false";
}

function prefillLogin() {
    // ?user=agent2&password=...&baseUrl=http://...&transport=websocket prefill the form.
    const params = new URLSearchParams(location.search);
    $("login-base-url").value = params.get("baseUrl") || location.origin;
    if (params.get("user")) $("login-user").value = params.get("user");
    if (params.get("password")) $("login-password").value = params.get("password");
    if (params.get("transport")) $("login-transport").value = params.get("transport");
}

$("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("login-button");
    button.disabled = true;
    $("login-error").textContent = "";
    try {
        await desktop.login({
            user: $("login-user").value.trim(),
            password: $("login-password").value,
            baseUrl: $("login-base-url").value.trim(),
            transport: $("login-transport").value,
        });
        showDesktop(true);
    } catch (error) {
        if (desktop.cometd && !desktop.cometd.isDisconnected()) desktop.cometd.disconnect();
        desktop.setStatus("disconnected");
        $("login-error").textContent = error.message || String(error);
    } finally {
        button.disabled = false;
    }
});

for (const [id, [operationName]] of Object.entries(STATE_BUTTONS)) {
    $(id).addEventListener("click", () => guarded(() => desktop.agentState(operationName)));
}

$("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const number = $("dial-number").value.trim();
    if (!number) { showError("Dial: enter a number first"); return; }
    guarded(() => desktop.dial(number));
});

$("btn-logout").addEventListener("click", async () => {
    $("btn-logout").disabled = true;
    showError("");
    let failure = "";
    try {
        await desktop.logout();
    } catch (error) {
        failure = `Log out: ${error.message || error}`;
    }
    desktop.loggedIn = false;
    showDesktop(false);
    desktop.render();
    $("who").textContent = "";
    $("login-error").textContent = failure; // the desktop is hidden now: say it on the login form
});

prefillLogin();
showDesktop(false);
document.body.dataset.ready = "true";
