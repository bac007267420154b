// The boundary view: decision-boundary panels painted in the browser from numbers.
//
// Streamlit calls the default export when the element mounts and again, with the same
// parentElement, whenever Python sends new data (every tick of a live run).  One View lives
// per parentElement and repaints from the new data; nothing is sent back.  Python builds the
// data with sema_demo.charts.boundaries.boundary_view_data: per method a grid of class
// probabilities (bytes, rows from the lowest y), the points, the class colours and names.
// The picture is the one boundary_panels draws with matplotlib for the downloads: class
// colours mixed by probability and faded to white where the network is unsure, a dark line
// where the top class changes, ● training points, ▲ test points.

const views = new WeakMap();

export default function (component) {
  const { parentElement, data } = component;
  let view = views.get(parentElement);
  if (!view || !view.root.isConnected) {   // first mount, or Streamlit replaced the HTML
    view?.destroy();
    view = new View(parentElement);
    views.set(parentElement, view);
  }
  view.load(data);
  return () => {
    view.destroy();
    views.delete(parentElement);
  };
}

const LINE = "rgba(34, 34, 34, 0.75)";
const TRAIN_EDGE = "#ffffff", TEST_EDGE = "#111111";

function rgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

function decode(grid) {
  const text = atob(grid.bytes);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return { rows: grid.rows, cols: grid.cols, classes: grid.classes, bytes };
}

class View {
  constructor(parent) {
    this.root = parent.querySelector(".bv");
    this.panelsBox = this.root.querySelector(".bv-panels");
    this.legend = this.root.querySelector(".bv-legend");
    this.panels = [];
    this.data = null;
    this.draws = 0;
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.root);
  }

  destroy() {
    this.resize.disconnect();
  }

  load(data) {
    this.data = data;
    this.colors = data.class_colors.map(rgb);
    this.root.style.setProperty("--bv-scale", String(data.scale || 1));
    const methods = data.panels.map((p) => p.method).join(",");
    if (methods !== this.methods) {
      this.methods = methods;
      this.build();
    }
    this.buildLegend();
    this.draw();
  }

  build() {
    this.panelsBox.replaceChildren();
    this.panels = this.data.panels.map((p) => {
      const panel = document.createElement("div");
      panel.className = "bv-panel";
      panel.dataset.method = p.method;
      const title = document.createElement("div");
      title.className = "bv-title";
      const name = document.createElement("span");
      name.className = "bv-name";
      const sub = document.createElement("span");
      sub.className = "bv-sub";
      title.append(name, sub);
      const wrap = document.createElement("div");
      wrap.className = "bv-wrap";
      const canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      const note = document.createElement("div");
      note.className = "bv-note";
      wrap.append(canvas, note);
      panel.append(title, wrap);
      this.panelsBox.append(panel);
      return { panel, name, sub, wrap, canvas, note };
    });
  }

  buildLegend() {
    const { class_colors: colors, class_names: names } = this.data;
    const key = JSON.stringify([colors, names]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    const items = names.map((label, k) => this.key(`<rect x="1" y="1" width="14" height="14" fill="${colors[k]}"/>`, label));
    items.push(this.key('<circle cx="8" cy="8" r="5.5" fill="#777" stroke="#fff" stroke-width="1"/>', "train"));
    items.push(this.key('<path d="M8 2 L14.5 14 L1.5 14 Z" fill="#777" stroke="#111" stroke-width="1"/>', "test"));
    this.legend.replaceChildren(...items);
  }

  key(svg, label) {
    const item = document.createElement("span");
    item.className = "bv-key";
    item.innerHTML = `<svg viewBox="0 0 16 16" aria-hidden="true">${svg}</svg>`;
    const text = document.createElement("span");
    text.textContent = label;                    // a user's CSV label: text, never markup
    item.append(text);
    return item;
  }

  draw() {
    if (!this.data) return;
    const ratio = window.devicePixelRatio || 1;
    this.data.panels.forEach((p, i) => {
      const view = this.panels[i];
      view.name.textContent = p.name;
      view.name.style.color = p.color;
      view.sub.textContent = p.title || "";
      view.sub.style.color = p.color;
      view.wrap.style.borderColor = p.color;
      view.note.textContent = p.note || "";
      view.canvas.setAttribute("aria-label", `${p.name}: the decision boundary and the data points`
        + (p.title ? ` (${p.title})` : ""));
      const size = Math.round(view.canvas.clientWidth * ratio);
      if (!size) return;                          // not laid out yet: the resize observer calls again
      if (view.canvas.width !== size) view.canvas.width = view.canvas.height = size;
      this.paint(view.canvas, p.grid ? decode(p.grid) : null);
    });
    this.draws += 1;
    this.root.dataset.draws = String(this.draws);
  }

  paint(canvas, grid) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, H);
    if (grid) {
      this.heatmap(ctx, grid, W, H);
      this.boundaries(ctx, grid, W, H);
    }
    this.points(ctx, W, H);
  }

  // class colours mixed by probability, faded to white as the top probability nears chance
  heatmap(ctx, grid, W, H) {
    const { rows, cols, classes: K, bytes } = grid;
    const [base, gain] = this.data.strength;
    const off = document.createElement("canvas");
    off.width = cols;
    off.height = rows;
    const octx = off.getContext("2d");
    const image = octx.createImageData(cols, rows);
    for (let r = 0; r < rows; r++) {
      const y = rows - 1 - r;                     // row 0 is the lowest y: the bottom of the picture
      for (let c = 0; c < cols; c++) {
        const at = (r * cols + c) * K;
        let mr = 0, mg = 0, mb = 0, top = 0;
        for (let k = 0; k < K; k++) {
          const p = bytes[at + k] / 255, [cr, cg, cb] = this.colors[k];
          mr += p * cr; mg += p * cg; mb += p * cb;
          if (p > top) top = p;
        }
        const confidence = Math.min(Math.max((top - 1 / K) / (1 - 1 / K), 0), 1);
        const s = base + gain * confidence;
        const o = (y * cols + c) * 4;
        image.data[o] = 255 * (1 - s * (1 - mr));
        image.data[o + 1] = 255 * (1 - s * (1 - mg));
        image.data[o + 2] = 255 * (1 - s * (1 - mb));
        image.data[o + 3] = 255;
      }
    }
    octx.putImageData(image, 0, 0);
    // grid values sit at evenly spaced points from edge to edge: cell centres on those points
    const sx = W / (cols - 1), sy = H / (rows - 1);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, -sx / 2, -sy / 2, W + sx, H + sy);
  }

  // where class k stops being the top one: the zero line of its margin, by marching squares
  boundaries(ctx, grid, W, H) {
    const { rows, cols, classes: K, bytes } = grid;
    const X = (c) => (c * W) / (cols - 1), Y = (r) => H - (r * H) / (rows - 1);
    ctx.beginPath();
    for (let k = 0; k < (K === 2 ? 1 : K); k++) {
      const margin = new Float32Array(rows * cols);
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < rows * cols; i++) {
        let other = -Infinity;
        for (let j = 0; j < K; j++) if (j !== k) other = Math.max(other, bytes[i * K + j]);
        margin[i] = bytes[i * K + k] - other;
        lo = Math.min(lo, margin[i]);
        hi = Math.max(hi, margin[i]);
      }
      if (!(lo < 0 && hi > 0)) continue;
      const m = (r, c) => margin[r * cols + c];
      for (let r = 0; r + 1 < rows; r++) {
        for (let c = 0; c + 1 < cols; c++) {
          const a = m(r, c), b = m(r, c + 1), e = m(r + 1, c + 1), d = m(r + 1, c);
          const pa = a > 0, pb = b > 0, pe = e > 0, pd = d > 0;
          if (pa === pb && pb === pe && pe === pd) continue;
          const cut = (v0, v1) => v0 / (v0 - v1);
          const edge = [
            pa !== pb ? [X(c + cut(a, b)), Y(r)] : null,            // bottom
            pb !== pe ? [X(c + 1), Y(r + cut(b, e))] : null,        // right
            pd !== pe ? [X(c + cut(d, e)), Y(r + 1)] : null,        // top
            pa !== pd ? [X(c), Y(r + cut(a, d))] : null,            // left
          ];
          const found = edge.filter(Boolean);
          let pairs;
          if (found.length === 2) pairs = [found];
          else if ((a + b + e + d > 0) === pa) pairs = [[edge[0], edge[1]], [edge[2], edge[3]]];   // saddle
          else pairs = [[edge[3], edge[0]], [edge[1], edge[2]]];
          for (const [p, q] of pairs) {
            ctx.moveTo(p[0], p[1]);
            ctx.lineTo(q[0], q[1]);
          }
        }
      }
    }
    ctx.strokeStyle = LINE;
    ctx.lineWidth = Math.max(1.2, W / 260);
    ctx.lineJoin = ctx.lineCap = "round";
    ctx.stroke();
  }

  points(ctx, W, H) {
    const [xmin, xmax, ymin, ymax] = this.data.extent;
    const px = (x) => ((x - xmin) / (xmax - xmin)) * W, py = (y) => H - ((y - ymin) / (ymax - ymin)) * H;
    const colors = this.data.class_colors;
    const unit = W / 320;
    const { train, test } = this.data.points;
    ctx.lineWidth = Math.max(0.8, unit * 0.6);
    ctx.strokeStyle = TRAIN_EDGE;
    const radius = Math.max(2, 2 * unit);
    for (let i = 0; i < train.c.length; i++) {
      ctx.beginPath();
      ctx.arc(px(train.x[i]), py(train.y[i]), radius, 0, 2 * Math.PI);
      ctx.fillStyle = colors[train.c[i]];
      ctx.fill();
      ctx.stroke();
    }
    ctx.strokeStyle = TEST_EDGE;
    const half = Math.max(3, 3 * unit);
    for (let i = 0; i < test.c.length; i++) {
      const x = px(test.x[i]), y = py(test.y[i]);
      ctx.beginPath();
      ctx.moveTo(x, y - half);
      ctx.lineTo(x + half, y + half * 0.8);
      ctx.lineTo(x - half, y + half * 0.8);
      ctx.closePath();
      ctx.fillStyle = colors[test.c[i]];
      ctx.fill();
      ctx.stroke();
    }
  }
}
