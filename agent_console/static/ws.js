// A reusable client of the console websocket protocol (PROTOCOL.md, version 1):
// hello/resume, reconnect with exponential backoff and jitter, ping heartbeat,
// de-duplication of stored events by seq, and commands resolved on ack / rejected on error.
//
// Events dispatched (CustomEvent, payload in `detail`):
//   status    {state: "connecting"|"open"|"reconnecting"|"closed", retryAt, attempt}
//   welcome   welcome data (plus `resumedFrom`)
//   snapshot  snapshot data
//   resync    resync_required data (the view must be rebuilt from the snapshot)
//   event     one stored event's data, each seq at most once, in order; `replayed` is true
//             for events at or below the head announced in welcome (already in the snapshot)
//   viewing / mention   ephemeral frames' data
//   protocol-error  an error frame that answers no command

export class CommandError extends Error {
  constructor(code, detail, name) {
    super(detail || code);
    this.code = code;
    this.detail = detail || code;
    this.command = name;
  }
}

const EPHEMERAL = new Set(["viewing", "mention", "typing"]);

function randomId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class ProtocolClient extends EventTarget {
  /**
   * @param {string} url websocket URL (ws:// or wss://)
   * @param {object} options timings in milliseconds; `WebSocketImpl` for tests
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.opts = {
      baseDelay: 500,
      maxDelay: 30000,
      pingInterval: 15000,
      pingTimeout: 10000,
      commandTimeout: 30000,
      WebSocketImpl: globalThis.WebSocket,
      ...options,
    };
    this.lastSeq = null; // last stored event processed; sent as hello.resume_from
    this.head = null; // head announced by the current connection's welcome
    this.state = "idle";
    this.attempt = 0;
    this.stats = { connects: 0, eventsProcessed: 0, duplicatesDropped: 0 };
    this._ws = null;
    this._ready = false; // welcome received on the current socket
    this._pending = new Map(); // client_msg_id -> {name, args, resolve, reject, timer}
    this._prefix = `${Date.now().toString(36)}-${randomId()}`;
    this._counter = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._pongDeadline = null;
    this._stopped = false;
  }

  /** Open the connection (and keep it open until stop()). */
  start() {
    this._stopped = false;
    this._connect();
  }

  /** Close for good; pending commands are rejected. */
  stop() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._teardown(1000, "client stopped");
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new CommandError("closed", "connection closed", p.name));
      this._pending.delete(id);
    }
    this._setState("closed");
  }

  /** Drop the current socket as a network failure would; the client then reconnects. */
  drop() {
    if (this._ws) this._lost();
  }

  /** True when the socket is open and the server has welcomed us. */
  get connected() {
    return this._ready;
  }

  /**
   * Send a command; resolves with `result` on ack, rejects with CommandError on error.
   * Commands issued while disconnected are sent after the next welcome; commands in flight
   * when the socket drops are re-sent with the same client_msg_id (the server is idempotent).
   */
  send(name, args = {}) {
    const clientMsgId = `${this._prefix}-${++this._counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(clientMsgId);
        reject(new CommandError("timeout", "no answer from the server", name));
      }, this.opts.commandTimeout);
      this._pending.set(clientMsgId, { name, args, resolve, reject, timer });
      if (this._ready) this._sendCommand(clientMsgId);
    });
  }

  // ------------------------------------------------------------------ internals
  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, attempt: this.attempt, ...extra } }));
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _connect() {
    clearTimeout(this._retryTimer);
    this._setState(this.attempt === 0 && this.stats.connects === 0 ? "connecting" : "reconnecting", {
      retryAt: null,
    });
    let ws;
    try {
      ws = new this.opts.WebSocketImpl(this.url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._ready = false;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._raw({ v: 1, type: "hello", data: { resume_from: this.lastSeq } });
      this._startHeartbeat();
    };
    ws.onmessage = (msg) => {
      if (ws !== this._ws) return;
      this._pongDeadline = null; // any frame proves the peer is alive
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this._onFrame(frame);
    };
    ws.onclose = () => {
      if (ws === this._ws) this._lost();
    };
    ws.onerror = () => {
      // onclose follows; nothing else to do here
    };
  }

  _raw(frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(frame));
  }

  _sendCommand(clientMsgId) {
    const p = this._pending.get(clientMsgId);
    if (!p) return;
    this._raw({ v: 1, type: "cmd", data: { client_msg_id: clientMsgId, name: p.name, args: p.args } });
  }

  _onFrame(frame) {
    const data = frame.data || {};
    switch (frame.type) {
      case "welcome": {
        const resumedFrom = this.lastSeq;
        this.head = data.head;
        // A first connection streams live from head: remember it so a later resume
        // starts there.
        if (this.lastSeq === null) this.lastSeq = data.head;
        this.attempt = 0;
        this.stats.connects += 1;
        this._ready = true;
        this._emit("welcome", { ...data, resumedFrom });
        this._setState("open");
        for (const id of this._pending.keys()) this._sendCommand(id);
        break;
      }
      case "snapshot":
        this._emit("snapshot", data);
        break;
      case "resync_required":
        // Events between our last seq and head are not coming: rebuild from the snapshot.
        this.lastSeq = data.head;
        this.head = data.head;
        this._emit("resync", data);
        break;
      case "event": {
        const seq = frame.seq ?? data.seq;
        if (typeof seq !== "number") return;
        if (this.lastSeq !== null && seq <= this.lastSeq) {
          this.stats.duplicatesDropped += 1;
          return;
        }
        const replayed = this.head !== null && seq <= this.head;
        try {
          this._emit("event", { ...data, seq, replayed });
        } finally {
          this.lastSeq = seq;
          this.stats.eventsProcessed += 1;
        }
        break;
      }
      case "ack":
      case "error": {
        const p = data.client_msg_id ? this._pending.get(data.client_msg_id) : null;
        if (!p) {
          if (frame.type === "error") this._emit("protocol-error", data);
          return;
        }
        this._pending.delete(data.client_msg_id);
        clearTimeout(p.timer);
        if (frame.type === "ack") p.resolve(data.result || {});
        else p.reject(new CommandError(data.code, data.detail, p.name));
        break;
      }
      case "pong":
        break;
      default:
        if (EPHEMERAL.has(frame.type)) this._emit(frame.type, data);
    }
  }

  _startHeartbeat() {
    clearInterval(this._pingTimer);
    this._pongDeadline = null;
    this._pingTimer = setInterval(() => {
      if (this._pongDeadline !== null && Date.now() > this._pongDeadline) {
        this._lost(); // no frame since our last ping: the connection is dead
        return;
      }
      if (this._pongDeadline === null) this._pongDeadline = Date.now() + this.opts.pingTimeout;
      this._raw({ v: 1, type: "ping" });
    }, this.opts.pingInterval);
  }

  _teardown(code, reason) {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    const ws = this._ws;
    this._ws = null;
    this._ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        // already closed
      }
    }
  }

  _lost() {
    this._teardown(4000, "connection lost");
    if (!this._stopped) this._scheduleReconnect();
  }

  _scheduleReconnect() {
    const { baseDelay, maxDelay } = this.opts;
    const ceiling = Math.min(maxDelay, baseDelay * 2 ** this.attempt);
    // "Equal jitter": at least half the step, so a crowd of consoles spreads out after
    // a server restart but nobody retries instantly in a loop.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    const retryAt = Date.now() + delay;
    this._setState("reconnecting", { retryAt });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }
}

/** The agent websocket URL of this page's origin. */
export function agentSocketUrl(path = "/ws/agent") {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}
