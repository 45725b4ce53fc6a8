// The Gallery's grid: column headings across, row headings down, a thumbnail and its caption in
// each cell; a click (or Enter) on a cell asks the server to open it (trigger "open", the
// generation id). Drawn here rather than as Streamlit columns, images, captions and buttons:
// those were ~300 elements for a page of 100 cells, laid out by the browser's main thread for
// up to 1.4 s on every rerun. An update that changes nothing redraws nothing, and one that
// keeps the layout redraws only the cells that changed (a running sweep refreshes every 2 s).
//
// data: { columns: [{text, help}], rows: [{heading: {text, help} | null, cells: [cell]}] }
// cell: { id, caption, src | null, state, error | null } or { note } (a place with no cell).
// A cell without an image shows its error when it failed, else its state (pending, …).

class Grid {
  constructor(root) {
    this.root = el("div", { class: "gg-root", "data-testid": "gallery-grid" });
    root.append(this.root);
    this.layout = null;  // the headings and the shape, as last drawn
    this.drawn = [];     // per place (row-major): [json, node]
  }

  update(data) {
    const layout = JSON.stringify([data.columns, data.rows.map((row) => [row.heading, row.cells.length])]);
    if (layout !== this.layout) {
      this.layout = layout;
      this.draw(data);
      return;
    }
    let n = 0;
    for (const row of data.rows) {
      for (const cell of row.cells) {
        const json = JSON.stringify(cell);
        const [was, node] = this.drawn[n];
        if (json !== was) {
          const fresh = this.cell(cell);
          node.replaceWith(fresh);
          this.drawn[n] = [json, fresh];
        }
        n += 1;
      }
    }
  }

  draw(data) {
    const headed = data.rows.some((row) => row.heading);
    const across = Math.max(data.columns.length, ...data.rows.map((row) => row.cells.length), 1);
    const grid = el("div", { class: "gg-grid", role: "grid" });
    grid.style.gridTemplateColumns =
      (headed ? "minmax(5rem, 1fr) " : "") + `repeat(${across}, minmax(0, 3fr))`;
    if (data.columns.length) {
      if (headed) grid.append(el("div", { class: "gg-corner" }));
      for (const column of data.columns) grid.append(this.heading(column, "gg-column"));
    }
    this.drawn = [];
    for (const row of data.rows) {
      if (headed) grid.append(row.heading ? this.heading(row.heading, "gg-row") : el("div"));
      for (const cell of row.cells) {
        const node = this.cell(cell);
        this.drawn.push([JSON.stringify(cell), node]);
        grid.append(node);
      }
    }
    this.root.replaceChildren(grid);
  }

  heading(heading, kind) {
    const attrs = { class: `gg-heading ${kind}` };
    if (heading.help) attrs.title = heading.help;  // a prompt's full text
    return el("div", attrs, heading.text);
  }

  cell(cell) {
    if (cell.note !== undefined) return el("div", { class: "gg-note" }, cell.note);
    const open = () => this.setTrigger("open", cell.id);
    const button = el("button", { class: "gg-cell", type: "button", title: "Open full size",
                                  "aria-label": `Open ${cell.caption}`,
                                  "data-generation-id": String(cell.id), onclick: open });
    if (cell.src) {
      button.append(el("img", { src: cell.src, alt: cell.caption, decoding: "async" }));
    } else {
      button.append(el("div", { class: "gg-empty" }, cell.error
        ? el("span", { class: "gg-error" }, cell.error)
        : el("span", { class: "gg-state" }, cell.state === "succeeded" ? "" : cell.state)));
    }
    button.append(el("span", { class: "gg-caption" }, cell.caption));
    return button;
  }
}

export default mountPanel(Grid);
