// The path player: paths animated over a pre-rendered loss-surface picture, in the browser.
//
// Streamlit calls the default export when the element mounts and again, with the same
// parentElement, whenever Python sends new data.  One Player lives per parentElement and
// takes the new data, so the frame shown, play/pause and the speed survive a rerun.
// Nothing here talks to the server while it plays: only a click on the surface (a new
// start) and a new speed are sent back.  The data shape is documented in __init__.py.

const players = new WeakMap();

export default function (component) {
  const { parentElement, data, setTriggerValue, setStateValue } = component;
  let player = players.get(parentElement);
  if (!player || !player.root.isConnected) {   // first mount, or Streamlit replaced the HTML
    player?.destroy();
    player = new Player(parentElement);
    players.set(parentElement, player);
  }
  player.send = { setTriggerValue, setStateValue };
  player.load(data);
  return () => {
    player.destroy();
    players.delete(parentElement);
  };
}

const LIVE_WIDTH = 1.5, LIVE_ALPHA = 0.6, LIVE_HEAD = 4;          // θ trails of averaging methods
const TRAIL_WIDTH = 2, TRAIL_ALPHA = 0.9, TRAIL_HEAD = 7;         // paths drawn as a trail (SGD)
const AVERAGE_WIDTH = 4, CASING_WIDTH = 7, AVERAGE_HEAD = 8;      // bold paths of averages φ
const REFERENCE_WIDTH = 820;   // line widths above are in pixels of a picture this wide
// icons as inline SVG: an emoji font may be missing on a lecture-hall PC
const PLAY = '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3 1.5v13L14.5 8z"/></svg> Play';
const PAUSE = '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3 2h3.5v12H3zM9.5 2H13v12H9.5z"/></svg> Pause';

class Player {
  constructor(parent) {
    this.root = parent.querySelector(".pp");
    const $ = (selector) => this.root.querySelector(selector);
    this.image = $(".pp-surface");
    this.canvas = $(".pp-paths");
    this.lossCanvas = $(".pp-loss");
    this.playButton = $(".pp-play");
    this.scrub = $(".pp-scrub");
    this.speedSelect = $(".pp-speed");
    this.hint = $(".pp-hint");
    this.step = 0;               // the step shown (fractional while playing)
    this.playing = false;
    this.frame = null;           // requestAnimationFrame handle
    this.lastTime = null;        // timestamp of the previous animation frame
    this.pressedAt = null;       // when ▶ was pressed, to time the first frame
    this.pending = null;         // a clicked start waiting for its paths
    this.data = null;
    this.lossBackdrop = null;    // the loss curves, drawn once per data and size

    this.listeners = [];
    this.listen(this.playButton, "click", (event) => (this.playing ? this.pause() : this.play(event.timeStamp)));
    this.listen($(".pp-rewind"), "click", () => { this.pause(); this.show(0); });
    this.listen(this.scrub, "input", () => { this.pause(); this.show(Number(this.scrub.value)); });
    this.listen(this.speedSelect, "change", () => {
      this.speed = Number(this.speedSelect.value);
      this.send.setStateValue("speed", this.speed);
    });
    this.listen(this.canvas, "click", (event) => this.clicked(event));
    this.listen(this.image, "load", () => this.resize());
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.root);
    this.playButton.innerHTML = PLAY;
  }

  listen(target, type, handler) {
    target.addEventListener(type, handler);
    this.listeners.push(() => target.removeEventListener(type, handler));
  }

  destroy() {
    this.pause();
    this.resizer.disconnect();
    this.listeners.forEach((remove) => remove());
  }

  load(data) {
    const first = this.data === null;
    const image = data.image;
    if (this.image.getAttribute("src") !== image.src) {
      this.image.src = image.src;       // only a new picture is decoded again
    }
    this.data = data;
    this.paths = data.paths.map((path) => ({ ...path, n: path.x.length }));
    this.steps = Math.max(1, data.steps);
    this.scrub.max = String(this.steps);
    if (first || this.speeds !== String(data.speeds)) {
      this.speeds = String(data.speeds);
      const unit = data.speed_unit || "steps/s";
      this.speedSelect.replaceChildren(...data.speeds.map((v) => new Option(`${v.toLocaleString("en-US")} ${unit}`, v)));
    }
    this.speed = data.speed;
    this.speedSelect.value = String(data.speed);
    this.root.classList.toggle("pp-clickable", Boolean(data.clickable));
    this.root.classList.toggle("pp-noloss", !data.paths.some((path) => path.loss));   // nothing to chart
    this.scale = data.scale || 1;            // projector mode: larger loss chart and text
    this.root.style.setProperty("--pp-scale", String(this.scale));
    this.hint.textContent = data.hint || "";
    this.pending = null;
    this.root.classList.remove("pp-busy");
    this.root.dataset.start = data.start ? data.start.join(",") : "";
    this.root.dataset.loads = String(Number(this.root.dataset.loads || 0) + 1);
    const replay = !first && data.play_token !== this.playToken;   // a preset or a new start: play it
    this.playToken = data.play_token;
    if (first) {
      this.step = data.frame ?? this.steps;      // open on the finished run: the whole story
    }
    this.step = Math.min(this.step, this.steps);
    this.lossBackdrop = null;
    this.resize();
    if (replay) {
      this.step = 0;
      this.play(performance.now());
    }
  }

  play(pressedAt) {
    if (this.step >= this.steps) this.step = 0;      // at the end: play again from the start
    this.playing = true;
    this.pressedAt = pressedAt;
    this.lastTime = null;
    this.root.classList.add("pp-playing");
    this.playButton.innerHTML = PAUSE;
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame((now) => this.tick(now));
  }

  pause() {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.root.classList.remove("pp-playing");
    this.playButton.innerHTML = PLAY;
  }

  tick(now) {
    if (!this.playing) return;
    if (this.lastTime !== null) {
      this.step = Math.min(this.steps, this.step + (this.speed * (now - this.lastTime)) / 1000);
    }
    this.lastTime = now;
    this.draw();
    if (this.pressedAt !== null) {       // the first frame after ▶: how long it took
      this.root.dataset.playToFirstFrameMs = (performance.now() - this.pressedAt).toFixed(1);
      this.pressedAt = null;
    }
    if (this.step >= this.steps) {
      this.pause();
      return;
    }
    this.frame = requestAnimationFrame((t) => this.tick(t));
  }

  show(step) {
    this.step = Math.max(0, Math.min(this.steps, step));
    this.draw();
  }

  // -- geometry: data coordinates <-> picture pixels <-> canvas pixels --------------------

  resize() {
    if (!this.data) return;
    const ratio = window.devicePixelRatio || 1;
    for (const canvas of [this.canvas, this.lossCanvas]) {
      const box = canvas.getBoundingClientRect();
      const width = Math.max(1, Math.round(box.width * ratio)), height = Math.max(1, Math.round(box.height * ratio));
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
        if (canvas === this.lossCanvas) this.lossBackdrop = null;
      }
    }
    this.draw();
  }

  // canvas pixels per picture pixel, and the plot box in canvas pixels
  layout() {
    const { width, plot_box: [left, top, right, bottom] } = this.data.image;
    const scale = this.canvas.width / width;
    return { scale, left: left * scale, top: top * scale, right: right * scale, bottom: bottom * scale };
  }

  toCanvas(x, y, box) {
    const [x0, x1, y0, y1] = this.data.image.extent;
    return [box.left + ((x - x0) / (x1 - x0)) * (box.right - box.left),
            box.bottom - ((y - y0) / (y1 - y0)) * (box.bottom - box.top)];
  }

  clicked(event) {
    if (!this.data || !this.data.clickable) return;
    const rect = this.canvas.getBoundingClientRect();
    const box = this.layout();
    const px = ((event.clientX - rect.left) / rect.width) * this.canvas.width;
    const py = ((event.clientY - rect.top) / rect.height) * this.canvas.height;
    if (px < box.left || px > box.right || py < box.top || py > box.bottom) return;   // legend, colour bar
    const [x0, x1, y0, y1] = this.data.image.extent;
    const x = x0 + ((px - box.left) / (box.right - box.left)) * (x1 - x0);
    const y = y0 + ((box.bottom - py) / (box.bottom - box.top)) * (y1 - y0);
    this.pause();
    this.pending = [x, y];
    this.root.classList.add("pp-busy");
    this.draw();
    this.send.setTriggerValue("start", { x, y });
  }

  // -- drawing ------------------------------------------------------------------------------

  // the optimizer step a frame shows: the frame itself, or its entry in step_values (recorded snapshots)
  stepOf(frame) {
    const values = this.data.step_values;
    return values ? values[Math.min(frame, values.length - 1)] : frame;
  }

  draw() {
    if (!this.data) return;
    const step = Math.floor(this.step);
    const shown = this.stepOf(step), last = this.stepOf(this.steps);
    this.scrub.value = String(step);
    this.scrub.setAttribute("aria-valuetext", `step ${shown.toLocaleString("en-US")} of ${last.toLocaleString("en-US")}`);
    this.root.dataset.step = String(step);
    const epoch = this.data.steps_per_epoch ? `  ·  epoch ${(shown / this.data.steps_per_epoch).toFixed(1)}` : "";
    this.drawPaths(step, epoch);
    if (this.data.paths.some((path) => path.loss)) this.drawLoss(step);
  }

  drawPaths(step, epoch) {
    const ctx = this.canvas.getContext("2d");
    const box = this.layout();
    // widths follow the picture's size, but stay visible on a small one (a projector's back row)
    const unit = Math.max(this.canvas.width / REFERENCE_WIDTH, 0.7 * (window.devicePixelRatio || 1));
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top, box.right - box.left, box.bottom - box.top);
    ctx.clip();                        // a path that leaves the plot stops at its edge
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    const trail = this.data.trail ?? Infinity;
    const heads = [];
    const shown = (path) => Math.min(step, path.n - 1) + 1;
    for (const path of this.paths) {                         // thin trails underneath
      const n = shown(path);
      if (path.style === "live") {
        this.line(ctx, path.x, path.y, Math.max(0, n - 1 - trail), n, box, path.color, TRAIL_ALPHA, TRAIL_WIDTH * unit);
        heads.push([path.x[n - 1], path.y[n - 1], TRAIL_HEAD, path.color]);
      }
      if (path.live) {
        const m = Math.min(n, path.live.x.length);
        this.line(ctx, path.live.x, path.live.y, Math.max(0, m - 1 - trail), m, box, path.color, LIVE_ALPHA, LIVE_WIDTH * unit);
        heads.push([path.live.x[m - 1], path.live.y[m - 1], LIVE_HEAD, path.color]);
      }
    }
    for (const path of this.paths) {                         // bold averages on top
      const n = shown(path);
      if (path.style !== "live") {
        this.line(ctx, path.x, path.y, 0, n, box, "white", 1, CASING_WIDTH * unit);
        this.line(ctx, path.x, path.y, 0, n, box, path.color, 1, AVERAGE_WIDTH * unit);
        heads.push([path.x[n - 1], path.y[n - 1], AVERAGE_HEAD, path.color]);
      }
      this.switches(ctx, path, n, trail, box, unit);
      if (path.diverged && n === path.n) this.cross(ctx, path, box, unit);
    }
    const start = this.pending || this.data.start;
    if (start) this.dot(ctx, this.toCanvas(start[0], start[1], box), 6 * unit, "white", "black", unit);
    for (const [x, y, radius, color] of heads) this.dot(ctx, this.toCanvas(x, y, box), radius * unit, color, "white", unit);
    const label = this.pending ? "computing the paths from the new start…" :
      `step ${this.stepOf(step).toLocaleString("en-US")} / ${this.stepOf(this.steps).toLocaleString("en-US")}${epoch}`;
    this.badge(ctx, label, box, unit);
    this.root.dataset.label = label;     // what the badge says (tests read it; the scrubber agrees)
    ctx.restore();
  }

  // the step shown, in the plot's top-right corner on a white plate (a title may fill the space above)
  badge(ctx, label, box, unit) {
    const size = Math.max(16 * unit, 14 * (window.devicePixelRatio || 1)) * this.scale, pad = size / 3;
    ctx.font = `${Math.round(size)}px sans-serif`;
    const width = ctx.measureText(label).width + 2 * pad, height = size * 1.5;
    ctx.globalAlpha = 0.85;
    ctx.fillStyle = "white";
    ctx.fillRect(box.right - width - pad, box.top + pad, width, height);
    ctx.globalAlpha = 1;
    ctx.fillStyle = "black";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(label, box.right - 2 * pad, box.top + pad + height / 2);
  }

  line(ctx, xs, ys, from, to, box, color, alpha, width) {
    if (to - from < 1) return;
    ctx.globalAlpha = alpha;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    const [x0, y0] = this.toCanvas(xs[from], ys[from], box);
    ctx.moveTo(x0, y0);
    for (let i = from + 1; i < to; i++) {
      const [x, y] = this.toCanvas(xs[i], ys[i], box);
      ctx.lineTo(x, y);
    }
    if (to - from === 1) ctx.lineTo(x0 + 0.01, y0);        // one point: a round dot
    ctx.stroke();
    ctx.globalAlpha = 1;
  }

  // ◆ where θ ← φ happened (on the live trail if there is one), dashed jump for recent ones
  switches(ctx, path, n, trail, box, unit) {
    const xs = path.live ? path.live.x : path.x, ys = path.live ? path.live.y : path.y;
    const first = n - 1 - trail;
    const r = 5 * unit;
    for (const k of path.switches || []) {
      if (k >= n || k >= xs.length) break;
      const [x, y] = this.toCanvas(xs[k], ys[k], box);
      if (k > first && k > 0) {
        const [px, py] = this.toCanvas(xs[k - 1], ys[k - 1], box);
        ctx.setLineDash([6 * unit, 6 * unit]);
        ctx.strokeStyle = path.color;
        ctx.lineWidth = 2 * unit;
        ctx.beginPath();
        ctx.moveTo(px, py);
        ctx.lineTo(x, y);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      ctx.beginPath();
      ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y);
      ctx.closePath();
      ctx.fillStyle = path.color;
      ctx.fill();
      ctx.strokeStyle = "white";
      ctx.lineWidth = unit;
      ctx.stroke();
    }
  }

  // ✕ at a diverged path's last point, kept inside the plot
  cross(ctx, path, box, unit) {
    const r = 10 * unit, margin = 12 * unit;
    let [x, y] = this.toCanvas(path.x[path.n - 1], path.y[path.n - 1], box);
    x = Math.min(Math.max(x, box.left + margin), box.right - margin);
    y = Math.min(Math.max(y, box.top + margin), box.bottom - margin);
    for (const [color, width] of [["black", r / 2], [path.color, r / 4]]) {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r);
      ctx.moveTo(x + r, y - r); ctx.lineTo(x - r, y + r);
      ctx.stroke();
    }
  }

  dot(ctx, [x, y], radius, fill, outline, unit) {
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.strokeStyle = outline;
    ctx.lineWidth = 2 * unit;
    ctx.stroke();
  }

  // -- the loss chart: curves drawn once per data and size, the cursor per frame ------------

  lossScale() {
    const log = this.data.loss_scale === "log";
    const value = (v) => (log ? Math.log10(Math.max(v, 1e-12)) : v);
    const all = [];
    for (const path of this.paths) if (path.loss) for (const v of path.loss) if (Number.isFinite(v)) all.push(value(v));
    if (!all.length) return null;
    all.sort((a, b) => a - b);
    const lo = all[0], hi = all[Math.floor(0.99 * (all.length - 1))];     // a diverging run does not flatten the rest
    return { value, lo, hi: hi > lo ? hi : lo + 1, log };
  }

  lossArea(ratio) {
    const canvas = this.lossCanvas, f = ratio * this.scale;
    return { left: 64 * f, right: canvas.width - 12 * ratio, top: 30 * f, bottom: canvas.height - 30 * f };
  }

  drawLoss(step) {
    const canvas = this.lossCanvas, ratio = window.devicePixelRatio || 1;
    const ctx = canvas.getContext("2d");
    const area = this.lossArea(ratio);
    if (!this.lossBackdrop) this.lossBackdrop = this.lossCurves(area, ratio);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.lossBackdrop) return;
    ctx.drawImage(this.lossBackdrop.canvas, 0, 0);
    const { scale, text } = this.lossBackdrop;
    const x = area.left + (step / this.steps) * (area.right - area.left);
    ctx.strokeStyle = text;        // the theme's text colour: visible in light and dark
    ctx.lineWidth = 1.5 * ratio;
    ctx.beginPath();
    ctx.moveTo(x, area.top);
    ctx.lineTo(x, area.bottom);
    ctx.stroke();
    // the legend row: each method's loss at the cursor, so the number follows the animation
    const readout = [];
    for (const path of this.paths) {
      if (!path.loss) continue;
      const k = Math.min(step, path.loss.length - 1);
      const v = Math.min(Math.max(scale.value(path.loss[k]), scale.lo), scale.hi);
      const y = area.bottom - ((v - scale.lo) / (scale.hi - scale.lo)) * (area.bottom - area.top);
      this.dot(ctx, [area.left + (k / this.steps) * (area.right - area.left), y], 4.5 * ratio, path.color, "white", ratio / 1.5);
      readout.push([path.color, `${path.name} ${formatLoss(path.loss[k])}`]);
    }
    // one row above the chart; the text shrinks (down to 60 %) rather than run past the right edge
    let f = ratio * this.scale;
    ctx.font = `${Math.round(13 * f)}px sans-serif`;
    const width = readout.reduce((sum, [, label]) => sum + 34 * f + ctx.measureText(label).width, 0);
    const room = canvas.width - 4 * ratio - 8 * ratio;
    if (width > room) {
      f *= Math.max(0.6, room / width);
      ctx.font = `${Math.round(13 * f)}px sans-serif`;
    }
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    let lx = 8 * ratio;
    const row = 12 * ratio * this.scale;
    for (const [color, label] of readout) {
      ctx.fillStyle = color;
      ctx.fillRect(lx, row - 2 * f, 14 * f, 4 * f);
      ctx.fillStyle = text;
      ctx.fillText(label, lx + 18 * f, row);
      lx += 34 * f + ctx.measureText(label).width;
    }
    this.root.dataset.lossReadout = readout.map(([, label]) => label).join("; ");
    this.root.dataset.lossCursorStep = String(step);
  }

  lossCurves(area, ratio) {
    const scale = this.lossScale();
    if (!scale) return null;
    const canvas = document.createElement("canvas");
    canvas.width = this.lossCanvas.width;
    canvas.height = this.lossCanvas.height;
    const ctx = canvas.getContext("2d");
    const style = getComputedStyle(this.root);
    const text = style.color || "#262730";
    const toY = (v) => area.bottom - ((Math.min(Math.max(scale.value(v), scale.lo), scale.hi) - scale.lo) / (scale.hi - scale.lo)) * (area.bottom - area.top);
    ctx.strokeStyle = "rgba(128, 128, 128, 0.5)";
    ctx.lineWidth = ratio;
    ctx.strokeRect(area.left, area.top, area.right - area.left, area.bottom - area.top);
    const columns = Math.max(1, Math.round(area.right - area.left));
    for (const path of this.paths) {                 // switch steps: faint dashed ticks
      if (!path.switches || !path.switches.length || !path.loss) continue;
      ctx.save();
      ctx.strokeStyle = path.color;
      ctx.globalAlpha = 0.25;
      ctx.setLineDash([3 * ratio, 3 * ratio]);
      ctx.lineWidth = ratio;
      ctx.beginPath();
      for (const k of path.switches) {
        const x = area.left + (k / this.steps) * (area.right - area.left);
        ctx.moveTo(x, area.top);
        ctx.lineTo(x, area.bottom);
      }
      ctx.stroke();
      ctx.restore();
    }
    for (const path of this.paths) {                 // live weights' loss: thin and faint
      const live = path.live && path.live.loss;
      if (!live || !live.length) continue;
      const stride = Math.max(1, Math.floor(live.length / columns));
      ctx.strokeStyle = path.color;
      ctx.lineWidth = ratio;
      ctx.globalAlpha = 0.45;
      ctx.beginPath();
      for (let k = 0; k < live.length; k += stride) {
        const x = area.left + (k / this.steps) * (area.right - area.left);
        k === 0 ? ctx.moveTo(x, toY(live[k])) : ctx.lineTo(x, toY(live[k]));
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    for (const path of this.paths) {
      if (!path.loss || !path.loss.length) continue;
      const stride = Math.max(1, Math.floor(path.loss.length / columns));   // about one point per pixel column
      ctx.strokeStyle = path.color;
      ctx.lineWidth = (path.style === "live" ? 1.5 : 2.5) * ratio;
      ctx.globalAlpha = path.style === "live" ? 0.8 : 1;
      ctx.beginPath();
      for (let k = 0; k < path.loss.length; k += stride) {
        const x = area.left + (k / this.steps) * (area.right - area.left);
        k === 0 ? ctx.moveTo(x, toY(path.loss[k])) : ctx.lineTo(x, toY(path.loss[k]));
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = text;
    ctx.font = `${Math.round(13 * ratio * this.scale)}px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    const tick = (v) => {
      const x = scale.log ? 10 ** v : v, size = Math.abs(x);
      return size !== 0 && (size < 1e-3 || size >= 1e4) ? x.toExponential(1) : String(Number(x.toPrecision(3)));
    };
    ctx.fillText(tick(scale.hi), area.left - 6 * ratio, area.top + 6 * ratio);
    ctx.fillText(tick(scale.lo), area.left - 6 * ratio, area.bottom - 6 * ratio);
    ctx.save();
    ctx.translate(14 * ratio * this.scale, (area.top + area.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(scale.log ? "loss (log)" : "loss", 0, 0);
    ctx.restore();
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText("0", area.left, area.bottom + 6 * ratio);
    ctx.textAlign = "right";
    ctx.fillText(this.steps.toLocaleString("en-US"), area.right, area.bottom + 6 * ratio);
    ctx.textAlign = "center";
    ctx.fillText(this.data.step_name || "step", (area.left + area.right) / 2, area.bottom + 6 * ratio);
    return { canvas, scale, text };
  }
}

// a loss for the readout: three significant figures, exponent notation when tiny or huge
function formatLoss(v) {
  if (!Number.isFinite(v)) return "—";
  const size = Math.abs(v);
  return size !== 0 && (size < 1e-3 || size >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}
