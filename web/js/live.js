// The live socket (/ws; the frames and the resume are described in docs/architecture.md,
// "WebSocket"). Frames carry the user's `seq`; the page remembers the last one it applied and,
// after a drop, opens /ws?last_seq=N, so the server replays exactly what was missed before
// any live frame. `recovered:false` (the server cannot replay that far) asks for a refetch.
//
// Status, for the header's badge: "signed-out" | "connecting" | "live" | "reconnecting".

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 8000;

export class LiveSocket {
  /// onFrame(frame), onStatus(status), onRefetch() (the list must be loaded again),
  /// onFailedOpen() (an upgrade failed before opening: the token may have expired),
  /// onExpired() (the server closed the socket because the token expired).
  constructor({ onFrame, onStatus, onRefetch, onFailedOpen, onExpired }) {
    Object.assign(this, { onFrame, onStatus, onRefetch, onFailedOpen, onExpired });
    this.socket = null;
    this.token = null;
    this.lastSeq = null; // null: nothing applied on this page yet
    this.retry = RETRY_MIN_MS;
    this.timer = null;
    this.status = "signed-out";
    this.openedBefore = false;
    this.online = () => this.socket || !this.token || this.reconnectNow();
    window.addEventListener("online", this.online);
  }

  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.onStatus(s);
  }

  start(token) {
    this.stop();
    this.token = token;
    this.lastSeq = null;
    this.openedBefore = false;
    this.retry = RETRY_MIN_MS;
    this.connect();
  }

  /// Closes the socket for good (sign-out): no reconnect, the status says signed out.
  stop() {
    this.token = null;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.socket;
    this.socket = null;
    if (ws) ws.close(1000, "signed out");
    this.lastSeq = null;
    this.setStatus("signed-out");
  }

  /// Drops the socket as a network failure would (for tests and debugging); it reconnects and
  /// resumes after `pauseMs`.
  drop(pauseMs = RETRY_MIN_MS) {
    const ws = this.socket;
    if (!ws) return;
    this.socket = null;
    ws.close(4000, "dropped");
    this.scheduleReconnect(pauseMs);
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  connect() {
    if (!this.token || this.socket) return;
    this.setStatus(this.openedBefore ? "reconnecting" : "connecting");
    const resume = this.lastSeq !== null ? "?last_seq=" + this.lastSeq : "";
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + resume;
    // Browsers cannot set an Authorization header on a WebSocket: the token rides in the
    // subprotocol list, as the server expects ("bearer", <token>).
    let ws;
    try {
      ws = new WebSocket(url, ["bearer", this.token]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      opened = true;
      this.retry = RETRY_MIN_MS;
      this.setStatus("live");
      // Back with nothing applied before the drop: the list may have missed changes.
      if (this.openedBefore && this.lastSeq === null) this.onRefetch();
      this.openedBefore = true;
    };
    ws.onmessage = (e) => {
      if (this.socket !== ws) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (frame.type === "resumed") {
        this.lastSeq = frame.seq;
        if (!frame.recovered) this.onRefetch();
        this.onFrame(frame);
        return;
      }
      if (typeof frame.seq === "number") this.lastSeq = frame.seq;
      this.onFrame(frame);
    };
    ws.onclose = (e) => {
      if (this.socket !== ws) return;
      this.socket = null;
      if (!this.token) return;
      if (e.code === 1008 && /expired/.test(e.reason)) {
        this.setStatus("reconnecting");
        this.onExpired();
        return;
      }
      if (!opened) this.onFailedOpen();
      this.scheduleReconnect();
    };
  }

  scheduleReconnect(delay) {
    if (!this.token) return;
    this.setStatus(this.openedBefore ? "reconnecting" : "connecting");
    clearTimeout(this.timer);
    const wait = delay ?? this.retry * (0.75 + Math.random() * 0.5);
    this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, wait);
  }
}
