// calcmcp console: get a token, calculate, broadcast, and follow the live event stream.
// Plain browser JavaScript, no build step and no dependencies. The token stays in this page's
// memory only. EventSource cannot send an Authorization header, so each connection opens with a
// single-use ticket from POST /events/ticket; after any disconnect the page gets a fresh ticket
// and resumes with lastEventId, so the events missed meanwhile are replayed.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const RETRY_BASE_MS = 1000;
  const RETRY_MAX_MS = 15000;
  const MAX_SHOWN = 500;
  const EVENT_TYPES = ["broadcast", "calculation"];

  const state = {
    token: null,
    source: null,
    wanted: false,
    lastEventId: null,
    attempt: 0,
    reconnects: 0,
    timer: null,
    opened: false,
  };

  // --- HTTP -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(path, { method = "POST", body, form, auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (auth) {
      if (!state.token) throw new ApiError(0, "get or paste an access token first");
      headers.Authorization = `Bearer ${state.token}`;
    }
    let payload;
    if (form) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      payload = new URLSearchParams(form).toString();
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
    } catch (error) {
      throw new ApiError(0, `network error: ${error.message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const problem = JSON.parse(text);
        message = problem.detail || problem.error_description || problem.error || message;
      } catch (_) {
        // not JSON: keep the status line
      }
      throw new ApiError(response.status, message);
    }
    return text;
  }

  function show(id, text, ok = true) {
    const element = $(id);
    element.textContent = text;
    element.dataset.ok = String(ok);
  }

  // --- token ------------------------------------------------------------------------------

  function claims(token) {
    // for display only: the server verifies the token, the page never trusts these
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (_) {
      return {};
    }
  }

  function useToken(token) {
    state.token = token;
    const { client_id: clientId, scope, exp } = claims(token);
    const until = exp ? ` until ${new Date(exp * 1000).toLocaleTimeString()}` : "";
    $("whoami").textContent = `${clientId || "unknown client"} (${scope || "?"})${until}`;
    show("token-status", "token ready");
  }

  $("credentials-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    show("token-status", "requesting a token ...");
    const form = {
      grant_type: "client_credentials",
      client_id: $("client-id").value,
      client_secret: $("client-secret").value,
    };
    if ($("scopes").value.trim()) form.scope = $("scopes").value.trim();
    try {
      const text = await request("/token", { form, auth: false });
      useToken(JSON.parse(text).access_token);
    } catch (error) {
      show("token-status", `no token: ${error.message}`, false);
    }
  });

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
    if (token) useToken(token);
    $("token-input").value = "";
  });

  // --- calculator and broadcast ------------------------------------------------------------

  $("calc-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const operation = $("operation").value;
    const body = { a: $("operand-a").value.trim(), b: $("operand-b").value.trim() };
    try {
      const text = await request(`/calculator/${operation}`, { body });
      show("result", rawNumber(text, "result", JSON.parse(text).result));
    } catch (error) {
      show("result", error.message, false);
    }
  });

  $("broadcast-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const text = await request("/broadcast", { body: { message: $("message").value } });
      show("broadcast-status", `broadcast as event ${JSON.parse(text).event_id}`);
      $("message").value = "";
    } catch (error) {
      show("broadcast-status", `not sent: ${error.message}`, false);
    }
  });

  // --- the live stream ---------------------------------------------------------------------

  function setState(name) {
    const element = $("stream-state");
    element.textContent = name;
    element.dataset.state = name;
  }

  function append(kind, id, text, detail) {
    const item = document.createElement("li");
    item.className = kind;
    if (id) item.dataset.id = id;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = kind;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text; // never innerHTML: messages are untrusted
    item.append(time, " ", label, " ", body);
    if (detail) {
      const small = document.createElement("small");
      small.textContent = detail;
      item.append(" ", small);
    }
    const list = $("events");
    list.append(item);
    while (list.children.length > MAX_SHOWN) list.firstElementChild.remove();
    item.scrollIntoView({ block: "nearest" });
  }

  // a JSON number field as written: JSON.parse would round exact decimals to a double
  function rawNumber(text, name, parsed) {
    const match = new RegExp(`"${name}":\\s*(-?[0-9][0-9.eE+-]*)`).exec(text);
    return match ? match[1] : String(parsed);
  }

  function describe(type, text) {
    const data = JSON.parse(text);
    if (type === "broadcast") return [`${data.message}`, `from ${data.sender}`];
    const symbol = { add: "+", subtract: "−", multiply: "×", divide: "÷" }[data.operation] || "?";
    const [a, b, result] = ["a", "b", "result"].map((name) => rawNumber(text, name, data[name]));
    return [`${a} ${symbol} ${b} = ${result}`, `by ${data.client_id}`];
  }

  function onEvent(event) {
    if (event.lastEventId) {
      state.lastEventId = event.lastEventId;
      $("last-id").textContent = event.lastEventId;
    }
    const [text, detail] = describe(event.type, event.data);
    append(event.type, event.lastEventId, text, detail);
  }

  function onNotice(event) {
    const data = JSON.parse(event.data);
    append(event.type, null, `${data.reason}: ${data.message}`);
  }

  function stopSource() {
    if (state.source) {
      state.source.close();
      state.source = null;
    }
    clearTimeout(state.timer);
    state.timer = null;
  }

  function scheduleReconnect() {
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** state.attempt);
    state.attempt += 1;
    setState("reconnecting");
    append("status", null, `disconnected; reconnecting in ${(delay / 1000).toFixed(0)} s`);
    state.timer = setTimeout(open, delay);
  }

  async function open() {
    state.timer = null;
    if (!state.wanted) return;
    setState("connecting");
    let ticket;
    try {
      ticket = JSON.parse(await request("/events/ticket")).ticket;
    } catch (error) {
      if (error.status === 401 || error.status === 403 || (error.status === 0 && !state.token)) {
        state.wanted = false;
        setState("closed");
        append("status", null, `cannot connect: ${error.message}; get a new token`);
      } else if (state.wanted) {
        scheduleReconnect();
      }
      return;
    }
    if (!state.wanted) return;
    const params = new URLSearchParams({ ticket });
    if (state.lastEventId) params.set("lastEventId", state.lastEventId);
    const types = EVENT_TYPES.filter((type) => $(`type-${type}`).checked);
    if (types.length && types.length < EVENT_TYPES.length) params.set("types", types.join(","));
    const source = new EventSource(`/events?${params}`);
    state.source = source;
    source.onopen = () => {
      if (state.source !== source) return;
      if (state.opened) {
        state.reconnects += 1;
        $("reconnects").textContent = String(state.reconnects);
        const after = state.lastEventId ? `, resuming after ${state.lastEventId}` : "";
        append("status", null, `reconnected${after}`);
      } else {
        append("status", null, "connected");
      }
      state.opened = true;
      state.attempt = 0;
      setState("open");
    };
    // EventSource reconnects by itself with the same URL, but its ticket is spent: take over,
    // with a fresh ticket and the last id seen
    source.onerror = () => {
      if (state.source !== source) return;
      stopSource();
      if (state.wanted) scheduleReconnect();
      else setState("closed");
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    for (const type of ["reset", "end"]) source.addEventListener(type, onNotice);
  }

  $("connect").addEventListener("click", () => {
    if (state.wanted) return;
    state.wanted = true;
    state.attempt = 0;
    open();
  });

  $("disconnect").addEventListener("click", () => {
    state.wanted = false;
    state.opened = false;
    stopSource();
    setState("closed");
    append("status", null, "disconnected by you");
  });

  $("clear").addEventListener("click", () => $("events").replaceChildren());
})();
