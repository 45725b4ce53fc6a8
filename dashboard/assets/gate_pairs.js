// The blind pair panel of the production gate: the input photo, then outputs A (left) and B
// (right) of one pair, in an order the server drew for this reviewer; nothing on screen says
// which version made which.
//
// Same pattern as the review panel: every choice carries the id of the pair that was on screen
// when it was made, the next pairs come preloaded so a key shows the next pair at once, and
// choices wait in the outbox (panel_common.js) until the server acknowledges them.
//
// Keys: A or 1 or ← left is better · B or 2 or → right is better · S or 3 or ↓ about the same.
// Mouse: click an image, or a button under the pair.

const PICK_KEYS = { a: "left", "1": "left", ArrowLeft: "left",
                    b: "right", "2": "right", ArrowRight: "right",
                    s: "same", "3": "same", ArrowDown: "same" };

class PairPanel {
  constructor(root) {
    this.outbox = new Outbox((message) => this.setState("log", { ...message, shown: this.shown }));
    this.view = null;
    this.items = new Map();  // pair id -> item
    this.order = [];
    this.images = new Map(); // url -> decoded <img>
    this.shown = null;
    this.shownAt = 0;
    this.build(root);
    this.onKey = (event) => this.key(event);
    document.addEventListener("keydown", this.onKey, true);
  }

  build(root) {
    this.progress = el("div", { class: "gp-progress" });
    this.status = el("div", { class: "gp-status", role: "status" });
    this.empty = el("div", { class: "gp-empty" });
    this.inputSlot = el("div", { class: "gp-slot" });
    this.leftSlot = el("div", { class: "gp-slot gp-pick", onclick: () => this.pick("left") });
    this.rightSlot = el("div", { class: "gp-slot gp-pick", onclick: () => this.pick("right") });
    this.note = el("div", { class: "gp-note" });
    this.mine = el("div", { class: "gp-mine" });
    this.buttons = el("div", { class: "gp-buttons" },
      el("button", { type: "button", class: "gp-button", "data-pick": "left",
                     onclick: () => this.pick("left") }, "A is better (A, 1, ←)"),
      el("button", { type: "button", class: "gp-button", "data-pick": "same",
                     onclick: () => this.pick("same") }, "About the same (S, 3, ↓)"),
      el("button", { type: "button", class: "gp-button", "data-pick": "right",
                     onclick: () => this.pick("right") }, "B is better (B, 2, →)"));
    this.body = el("div", { class: "gp-body" },
      el("div", { class: "gp-row" },
        el("figure", {}, this.inputSlot, el("figcaption", {}, "Input photo")),
        el("figure", {}, this.leftSlot, el("figcaption", {}, "A")),
        el("figure", {}, this.rightSlot, el("figcaption", {}, "B"))),
      this.note, this.mine, this.buttons,
      el("div", { class: "gp-keys" },
         "Which output is the better result for this photo? Click it, or press A / B " +
         "(or 1 / 2, ← / →); S, 3 or ↓ if they are about the same."));
    this.root = el("div", { class: "gp-root", "data-testid": "gate-pair-panel" },
                   this.progress, this.status, this.empty, this.body);
    root.append(this.root);
  }

  update(data) {
    this.outbox.answered(data);
    for (const item of data.items) this.items.set(item.id, item);
    this.order = data.items.map((item) => item.id);
    this.progress.textContent = data.progress || "";
    this.endText = data.end || "";
    if (data.notice && data.notice.id !== this.noticeId) {
      this.noticeId = data.notice.id;
      this.say(data.notice.text, data.notice.kind);
    }
    for (const item of data.items) this.preload(item);
    if (data.view !== this.view) {
      this.view = data.view;
      this.show(this.nextAfter(null));
    } else if (this.shown === null || !this.items.has(this.shown)) {
      this.show(this.nextAfter(null));
    }
    if (this.outbox.pending.length) this.outbox.send();
  }

  preload(item) {
    for (const url of [item.input_url, item.left_url, item.right_url]) {
      if (!url || this.images.has(url)) continue;
      const img = el("img", { src: url, alt: "" });
      img.decode().catch(() => {});
      this.images.set(url, img);
    }
    if (this.images.size > 60) {
      const wanted = new Set();
      for (const id of [this.shown, ...this.order]) {
        const it = this.items.get(id);
        if (it) [it.input_url, it.left_url, it.right_url].forEach((u) => wanted.add(u));
      }
      for (const url of [...this.images.keys()]) if (!wanted.has(url)) this.images.delete(url);
    }
  }

  nextAfter(current) {
    const done = new Set(this.outbox.pending.map((c) => c.pair));
    return this.order.find((id) => !done.has(id) && id !== current) ?? null;
  }

  show(id) {
    const item = id === null ? null : this.items.get(id);
    this.shown = item ? id : null;
    this.shownAt = performance.now();
    this.root.dataset.pairId = item ? String(id) : "";
    delete this.root.dataset.shownId;
    this.body.hidden = !item;
    this.empty.hidden = Boolean(item);
    if (!item) {
      this.empty.textContent = this.outbox.pending.length
        ? "Saving your choices… the next pairs appear in a moment." : this.endText;
      return;
    }
    this.note.textContent = item.note ? `Note on this photo: ${item.note}` : "";
    this.mine.textContent = item.your_pick
      ? `You judged this pair before (${item.your_pick}); choosing again replaces it.` : "";
    const shown = [this.place(this.inputSlot, item.input_url, "input photo"),
                   this.place(this.leftSlot, item.left_url, "output A"),
                   this.place(this.rightSlot, item.right_url, "output B")];
    Promise.all(shown).then(() => {
      if (this.shown === id) {
        requestAnimationFrame(() => { if (this.shown === id) this.root.dataset.shownId = String(id); });
      }
    });
  }

  place(slot, url, what) {
    slot.replaceChildren();
    if (!url) {
      slot.append(el("div", { class: "gp-missing" }, `No ${what} stored.`));
      return Promise.resolve();
    }
    let img = this.images.get(url);
    if (!img) { img = el("img", { src: url, alt: "" }); this.images.set(url, img); }
    if (img.parentNode) img = img.cloneNode();
    img.alt = what;
    slot.append(img);
    return img.decode().catch(() => {
      slot.replaceChildren(el("div", { class: "gp-missing" }, `The stored ${what} could not be read.`));
    });
  }

  say(text, kind = "info") {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  pick(choice) {
    if (this.shown === null) {
      this.say("No pair is on screen yet: wait for the images to appear.", "error");
      return;
    }
    const pair = this.shown;
    this.outbox.add({ pair, pick: choice,
                      seconds: Math.round((performance.now() - this.shownAt) / 100) / 10 });
    this.say(`Saving your choice on pair ${pair}…`);
    this.show(this.nextAfter(pair));
    this.outbox.send();
  }

  key(event) {
    if (!this.root.isConnected) return;
    if (typingIn(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const choice = PICK_KEYS[event.key] ?? PICK_KEYS[event.key.toLowerCase()];
    if (!choice) return;
    event.preventDefault();
    event.stopPropagation();
    this.pick(choice);
  }
}

export default mountPanel(PairPanel);
