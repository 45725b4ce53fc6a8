// The review panel: the input/output pair, stars, thumbs, tags and note, driven by keys.
//
// Why it lives in the browser: every action carries the id of the generation that was on
// screen when it was taken, and what is on screen (stars, thumbs, tags, note) is exactly what
// is sent. The next pairs come preloaded and decoded, so a rating key shows the next image at
// once, without waiting for the server; the server applies the actions in order, refuses what
// it must (visibly, on the page) and acknowledges them: until then they wait in the outbox
// (panel_common.js), sent again with every update, one update in flight at a time.
//
// Keys (not while typing in the note or the tag field, except Ctrl+Enter):
// 1–5 rate and go on · Ctrl+Enter save and go on · J next · K previous · U / D thumbs.

class Panel {
  constructor(root) {
    this.outbox = new Outbox((message) => this.setState("log", { ...message, shown: this.shown }));
    this.view = null;         // the server's view token: a new one resets what is shown
    this.items = new Map();   // generation id -> item, as last sent by the server
    this.order = [];          // ids in queue order, as last sent by the server
    this.images = new Map();  // url -> decoded <img>, for the preloaded pairs
    this.shownReady = Promise.resolve();  // the pair on screen decoded
    this.shown = null;        // the generation on screen
    this.draft = null;        // what the controls show for it
    this.message = null;
    this.build(root);
    this.onKey = (event) => this.key(event);
    document.addEventListener("keydown", this.onKey, true);
  }

  build(root) {
    this.title = el("div", { class: "rv-title" });
    this.why = el("div", { class: "rv-why" });
    this.inputSlot = el("div", { class: "rv-slot" });
    this.outputSlot = el("div", { class: "rv-slot" });
    this.inputCaption = el("div", { class: "rv-caption" });
    this.outputCaption = el("div", { class: "rv-caption" });
    this.meta = el("div", { class: "rv-meta" });
    this.stars = [1, 2, 3, 4, 5].map((n) =>
      el("button", { class: "rv-star", type: "button", "data-stars": String(n),
                     title: `${n} star${n > 1 ? "s" : ""} (key ${n}: rate and go on)`,
                     onclick: () => this.setRating(n) }, "★"));
    this.thumbUp = el("button", { class: "rv-thumb", type: "button", title: "Thumbs up (U)",
                                  "data-thumb": "up", onclick: () => this.setThumbs(1) }, "👍");
    this.thumbDown = el("button", { class: "rv-thumb", type: "button",
                                    title: "Thumbs down (D)", "data-thumb": "down",
                                    onclick: () => this.setThumbs(-1) }, "👎");
    this.tagBox = el("div", { class: "rv-tags" });
    this.newTag = el("input", { class: "rv-newtag", type: "text", maxlength: "40",
                                placeholder: "Add a tag, Enter", "aria-label": "New tag" });
    this.newTag.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        const tag = this.newTag.value.trim().toLowerCase().replace(/\s+/g, " ");
        if (tag && this.draft) { this.draft.tags.add(tag); this.extraTags.add(tag); }
        this.newTag.value = "";
        this.renderControls();
      }
    });
    this.extraTags = new Set();
    this.note = el("textarea", { class: "rv-note", rows: "3", "aria-label": "Note",
                                 placeholder: "Note (Ctrl+Enter saves and goes on)" });
    this.note.addEventListener("input", () => { if (this.draft) this.draft.note = this.note.value; });
    this.saveButton = el("button", { class: "rv-primary", type: "button",
                                     onclick: () => this.save() }, "Save and next (Ctrl+Enter)");
    this.prevButton = el("button", { class: "rv-nav", type: "button",
                                     onclick: () => this.navigate("prev") }, "← Previous (K)");
    this.nextButton = el("button", { class: "rv-nav", type: "button",
                                     onclick: () => this.navigate("next") }, "Next (J) →");
    this.status = el("div", { class: "rv-status", role: "status" });
    this.earlier = el("div", { class: "rv-earlier" });
    this.others = el("div", { class: "rv-others" });
    this.progress = el("div", { class: "rv-progress" });
    this.empty = el("div", { class: "rv-empty" });
    this.body = el("div", { class: "rv-body" },
      el("div", { class: "rv-pair" },
        el("figure", {}, this.inputSlot, this.inputCaption),
        el("figure", {}, this.outputSlot, this.outputCaption)),
      el("div", { class: "rv-side" },
        this.earlier,
        el("div", { class: "rv-label" }, "Rating"), el("div", { class: "rv-stars" }, ...this.stars),
        el("div", { class: "rv-label" }, "Thumbs"),
        el("div", { class: "rv-thumbs" }, this.thumbUp, this.thumbDown),
        el("div", { class: "rv-label" }, "Tags"), this.tagBox, this.newTag,
        el("div", { class: "rv-label" }, "Note"), this.note,
        this.saveButton, el("div", { class: "rv-navs" }, this.prevButton, this.nextButton),
        this.others,
        el("div", { class: "rv-keys" },
           "Keys: 1–5 rate and go on · Ctrl+Enter save and go on · J next · K previous · " +
           "U / D thumbs (not while typing, except Ctrl+Enter)")));
    this.root = el("div", { class: "rv-root", "data-testid": "review-panel" },
      this.progress, this.title, this.why, this.status, this.empty, this.body, this.meta);
    root.append(this.root);
  }

  // -- data from the server ---------------------------------------------------------------------
  update(data) {
    this.presetTags = data.tags || [];
    this.outbox.answered(data);  // the server finished a run: the next update can go
    for (const item of data.items) this.items.set(item.id, item);
    this.order = data.items.map((item) => item.id);
    this.progress.textContent = data.progress || "";
    if (data.notice && data.notice.id !== this.noticeId) {
      this.noticeId = data.notice.id;
      this.say(data.notice.text, data.notice.kind);
    }
    this.endText = data.end || "";
    if (data.view !== this.view) {
      this.view = data.view;
      this.show(this.order[0] ?? null);
    } else if (this.shown === null) {
      this.show(this.nextAfter(null));
    } else if (this.items.has(this.shown)) {
      this.renderOthers(this.items.get(this.shown));
    }
    // The rest preloaded once the pair on screen is decoded: fetched and decoded all at once
    // (up to 32 full-size images) they held the first pair back by about half a second.
    this.shownReady.then(() => { for (const item of data.items) this.preload(item); });
    if (this.outbox.pending.length) this.outbox.send();  // what came after, or what it missed
  }

  preload(item) {
    for (const url of [item.input_url, item.output_url]) {
      if (!url || this.images.has(url)) continue;
      const img = el("img", { src: url, alt: "" });
      img.decode().catch(() => {});  // decoded ahead, so showing it costs no decode
      this.images.set(url, img);
    }
    if (this.images.size > 40) {  // keep what the queue still needs, drop the rest
      const wanted = new Set();
      for (const id of [this.shown, ...this.order]) {
        const it = this.items.get(id);
        if (it) { wanted.add(it.input_url); wanted.add(it.output_url); }
      }
      for (const url of [...this.images.keys()]) if (!wanted.has(url)) this.images.delete(url);
    }
  }

  doneHere() {
    return new Set(this.outbox.pending.filter((a) => a.kind === "save").map((a) => a.gid));
  }

  nextAfter(current) {
    const done = this.doneHere();
    const open = this.order.filter((id) => !done.has(id) && id !== current);
    const at = current === null ? -1 : this.order.indexOf(current);
    const later = open.find((id) => this.order.indexOf(id) > at);
    return later ?? open[0] ?? null;
  }

  // -- what is on screen ------------------------------------------------------------------------
  show(id) {
    const item = id === null ? null : this.items.get(id);
    this.shown = item ? id : null;
    this.shownAt = performance.now();
    this.root.dataset.generationId = item ? String(id) : "";
    // how many next generations the panel holds (0: the next must come from the server)
    this.root.dataset.ahead = String(this.order.filter((g) => g !== id && !this.doneHere().has(g)).length);
    delete this.root.dataset.shownId;
    this.body.hidden = !item;
    this.empty.hidden = Boolean(item);
    this.shownReady = Promise.resolve();
    if (!item) {
      this.title.textContent = "";
      this.why.textContent = "";
      this.meta.textContent = "";
      this.empty.textContent = this.outbox.pending.length
        ? "Saving your reviews… the next generations appear in a moment."
        : this.endText;
      return;
    }
    const earlier = item.review;
    this.draft = { rating: earlier ? earlier.rating : null, thumbs: earlier ? earlier.thumbs : null,
                   tags: new Set(earlier ? earlier.tags : []), note: earlier ? earlier.note : "" };
    this.extraTags = new Set(earlier ? earlier.tags : []);
    this.note.value = this.draft.note;
    this.newTag.value = "";
    this.title.textContent = `Generation ${item.id} · ${item.input_label} · sweep #${item.sweep_id}` +
      (item.sweep_name ? ` ${item.sweep_name}` : "");
    this.why.textContent = item.why;
    this.meta.textContent = item.meta;
    this.inputCaption.textContent = `Input · ${item.input_label}`;
    this.outputCaption.textContent = `Output · generation ${item.id}`;
    this.earlier.textContent = earlier
      ? `You reviewed this on ${earlier.at}; saving replaces that review.` : "";
    const input = this.place(this.inputSlot, item.input_url, "input");
    const output = this.place(this.outputSlot, item.output_url, "output");
    this.renderControls();
    this.renderOthers(item);
    // "fully shown": both images decoded and in the page (the benchmark waits for this)
    this.shownReady = Promise.all([input, output]);
    this.shownReady.then(() => {
      if (this.shown === id) {
        requestAnimationFrame(() => { if (this.shown === id) this.root.dataset.shownId = String(id); });
      }
    });
  }

  place(slot, url, what) {
    slot.replaceChildren();
    if (!url) {
      slot.append(el("div", { class: "rv-missing" }, `No ${what} image stored.`));
      return Promise.resolve();
    }
    let img = this.images.get(url);
    if (!img) { img = el("img", { src: url, alt: "" }); this.images.set(url, img); }
    if (img.parentNode) img = img.cloneNode();  // the same input on both sides of a jump
    img.alt = what;
    slot.append(img);
    return img.decode().catch(() => {
      slot.replaceChildren(el("div", { class: "rv-missing" },
                              `The stored ${what} image could not be read.`));
    });
  }

  renderControls() {
    const draft = this.draft;
    this.stars.forEach((star, i) => star.classList.toggle("on", draft.rating !== null && i < draft.rating));
    this.thumbUp.classList.toggle("on", draft.thumbs === 1);
    this.thumbDown.classList.toggle("on", draft.thumbs === -1);
    const tags = [...new Set([...this.presetTags, ...this.extraTags])];
    this.tagBox.replaceChildren(...tags.map((tag) => el("button", {
      class: "rv-tag" + (draft.tags.has(tag) ? " on" : ""), type: "button", "data-tag": tag,
      "aria-pressed": draft.tags.has(tag) ? "true" : "false",
      onclick: () => {
        if (draft.tags.has(tag)) draft.tags.delete(tag); else draft.tags.add(tag);
        this.renderControls();
      } }, tag)));
  }

  renderOthers(item) {
    if (!item.others_text) { this.others.textContent = ""; return; }
    this.others.textContent = item.others_text;
  }

  say(text, kind = "info") {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  // -- actions ----------------------------------------------------------------------------------
  setRating(n) { if (this.draft) { this.draft.rating = this.draft.rating === n ? null : n; this.renderControls(); } }
  setThumbs(t) { if (this.draft) { this.draft.thumbs = this.draft.thumbs === t ? null : t; this.renderControls(); } }

  save(rating) {
    if (this.shown === null) {
      this.say("Nothing is on screen to review yet: wait for the image to appear.", "error");
      return;
    }
    const draft = this.draft;
    if (rating !== undefined) draft.rating = rating;
    const note = this.note.value;
    if (draft.rating === null && draft.thumbs === null && !draft.tags.size && !note.trim()) {
      this.say("Nothing to save: give a rating, a thumb, a tag or a note.", "error");
      return;
    }
    const gid = this.shown;
    this.outbox.add({ kind: "save", gid, rating: draft.rating, thumbs: draft.thumbs,
                      tags: [...draft.tags], note,
                      seconds: Math.round((performance.now() - this.shownAt) / 100) / 10 });
    this.say(`Saving your review of generation ${gid}…`);
    this.show(this.nextAfter(gid));
    // paint the next pair first; telling the server costs the page a re-render
    requestAnimationFrame(() => setTimeout(() => this.outbox.send(), 0));
  }

  navigate(kind) {
    if (this.shown === null && kind === "prev" && !this.order.length) return;
    this.outbox.add({ kind, gid: this.shown });
    this.say(kind === "next" ? "Moving to the next generation…" : "Moving to the previous generation…");
    this.outbox.send();
  }

  key(event) {
    if (!this.root.isConnected) return;
    const typing = typingIn(event);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault(); event.stopPropagation();
      this.save();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^[1-5]$/.test(event.key)) {
      event.preventDefault(); event.stopPropagation();
      this.save(Number(event.key));
    } else if (event.key === "j" || event.key === "J") {
      event.preventDefault(); this.navigate("next");
    } else if (event.key === "k" || event.key === "K") {
      event.preventDefault(); this.navigate("prev");
    } else if (event.key === "u" || event.key === "U") {
      this.setThumbs(1);
    } else if (event.key === "d" || event.key === "D") {
      this.setThumbs(-1);
    }
  }
}

export default mountPanel(Panel);
