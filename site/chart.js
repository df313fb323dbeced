// A small dependency-free canvas line chart: aggregate tokens/s over the last minute. The
// points are also kept in the canvas's data-points (JSON) and its label names the latest rate,
// for screen readers and tests.

const WINDOW_S = 60;

export class RateChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = []; // [seconds since start, tokens/s]
    this.draw();
  }

  // A new run starts with no points: the first is its first measured sample, not a made-up 0.
  reset() {
    this.points = [];
    this.draw();
  }

  push(tSeconds, rate) {
    this.points.push([tSeconds, rate]);
    const cutoff = tSeconds - WINDOW_S;
    while (this.points.length > 2 && this.points[0][0] < cutoff) this.points.shift();
    this.canvas.dataset.points = JSON.stringify(this.points.map(([t, r]) => [+t.toFixed(3), +r.toFixed(1)]));
    this.canvas.setAttribute("aria-label", `Aggregate tokens per second over time; latest ${rate.toFixed(1)} tokens/s`);
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    // Draw at device resolution so lines stay sharp on high-DPI laptop screens.
    const ratio = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || canvas.width;
    const cssH = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(cssW * ratio)) canvas.width = Math.round(cssW * ratio);
    if (canvas.height !== Math.round(cssH * ratio)) canvas.height = Math.round(cssH * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);

    const left = 46, right = 8, top = 10, bottom = 20;
    const w = cssW - left - right, h = cssH - top - bottom;
    const last = this.points.length ? this.points[this.points.length - 1][0] : 0;
    const t0 = Math.max(0, last - WINDOW_S);
    // Four gridlines at a "nice" step, so every axis label is a round number.
    const step = niceCeiling(Math.max(1, ...this.points.map((p) => p[1])) / 4);
    const maxRate = step * 4;

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5b5b66";
    ctx.strokeStyle = "#e3e3ea";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (h * i) / 4;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + w, y);
      ctx.stroke();
      ctx.fillText(String(+(step * i).toPrecision(3)), 4, y + 4);
    }
    ctx.fillText("tokens/s", left + 4, top + 10);
    ctx.fillText(`${Math.round(t0)} s`, left, cssH - 5);
    ctx.fillText(`${Math.round(last)} s`, left + w - 28, cssH - 5);

    if (this.points.length < 2) return;
    const span = Math.max(1, last - t0);
    ctx.strokeStyle = "#1f5fbf";
    ctx.lineWidth = 2;
    ctx.beginPath();
    this.points.forEach(([t, r], i) => {
      const x = left + ((t - t0) / span) * w;
      const y = top + h - (r / maxRate) * h;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}
