// Shared by the browser panels (review_panel.js, gate_pairs.js, gallery_grid.js):
// dashboard/panels.py puts this file in front of each panel's own script, so these names are
// the panel's too.
//
// The outbox: every action a person takes carries a per-client sequence number and waits in
// `pending` until the server acknowledges it (`data.acked[client]`, the last number it
// applied; it applies each number once). Everything pending is sent again with every update,
// so nothing is lost when Streamlit coalesces updates. One update is in flight at a time (the
// rest wait for the server's answer): a new update would stop the server's run for the
// previous one, and under fast keys no run would finish; an answer that never comes is
// retried after 3 s.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function clientId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A key pressed while typing in a field of the page (not for the panel's shortcuts).
function typingIn(event) {
  const target = event.composedPath()[0];
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

class Outbox {
  // `post(message)` hands `{ client, events }` to the server (the panel adds what is shown).
  constructor(post) {
    this.client = clientId();
    this.seq = 0;
    this.pending = [];  // actions not yet acknowledged by the server
    this.inFlight = false;
    this.resendTimer = null;
    this.post = post;
  }

  add(action) {
    this.pending.push({ seq: ++this.seq, ...action });
  }

  // The server's answer (a new update): drop what it applied; the next update can go.
  answered(data) {
    const acked = (data.acked || {})[this.client] || 0;
    this.pending = this.pending.filter((action) => action.seq > acked);
    this.inFlight = false;
    clearTimeout(this.resendTimer);
  }

  send() {
    if (this.inFlight) return;  // sent with the next update, when the server has answered
    this.inFlight = true;
    this.post({ client: this.client, events: this.pending });
    clearTimeout(this.resendTimer);
    this.resendTimer = setTimeout(() => {
      this.inFlight = false;
      if (this.pending.length) this.send();
    }, 3000);
  }
}

// The component's entry point for a panel class: one panel per element, fed every update.
function mountPanel(PanelClass) {
  const panels = new WeakMap();
  return function (component) {
    const { data, parentElement, setStateValue } = component;
    let panel = panels.get(parentElement);
    if (!panel) {
      panel = new PanelClass(parentElement);
      panels.set(parentElement, panel);
    }
    panel.setState = setStateValue;
    panel.setTrigger = component.setTriggerValue;
    panel.update(data);
    return () => {
      document.removeEventListener("keydown", panel.onKey, true);
      panels.delete(parentElement);
    };
  };
}
