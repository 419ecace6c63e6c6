// leadflow dashboard: charts drawn in SVG at the width of their card. No dependencies.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const SVG_TAGS = ["svg", "rect", "text", "line", "polyline", "circle", "g", "title"];
const COLOURS = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626", "#4b5563"];
const TEXT_WIDTH = 6.6; // px per character of the 11 px chart text, roughly

function el(tag, attrs = {}, text = "") {
  const node = SVG_TAGS.includes(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== "") node.textContent = text;
  return node;
}

// Charts are drawn in the card's own pixels, so their text stays readable on a phone;
// when the card changes width they are drawn again from the same figures.
const drawings = new WeakMap();
const resized = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const drawing = drawings.get(entry.target);
    if (drawing && Math.round(entry.contentRect.width) !== drawing.width) draw(entry.target, drawing.render);
  }
});

function draw(container, render) {
  const width = Math.max(240, Math.floor(container.clientWidth));
  drawings.set(container, { render, width });
  resized.observe(container);
  container.replaceChildren(...[render(width)].flat());
}

function clip(label, characters) {
  return label.length <= characters ? label : `${label.slice(0, Math.max(1, characters - 1))}…`;
}

// Horizontal bars, one per item: {label, value, text?}.
function bars(container, items, label) {
  draw(container, (width) => {
    const labelCharacters = Math.min(Math.floor((width * 0.35) / TEXT_WIDTH), Math.max(4, ...items.map((i) => i.label.length)));
    const labelWidth = TEXT_WIDTH * labelCharacters + 8;
    const valueWidth = Math.min(width * 0.25, TEXT_WIDTH * Math.max(3, ...items.map((i) => (i.text ?? String(i.value)).length)) + 8);
    const room = Math.max(1, width - labelWidth - valueWidth);
    const height = 22 * items.length + 4;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
    const most = Math.max(1, ...items.map((item) => item.value));
    items.forEach((item, index) => {
      const y = 2 + index * 22;
      const length = Math.max((room * item.value) / most, 1);
      const name = el("text", { x: 0, y: y + 13 }, clip(item.label, labelCharacters));
      name.append(el("title", {}, item.label));
      svg.append(name);
      svg.append(el("rect", { x: labelWidth, y, width: length, height: 16, fill: COLOURS[0], rx: 3, "data-value": item.value }));
      svg.append(el("text", { x: labelWidth + length + 4, y: y + 13 }, item.text ?? String(item.value)));
    });
    return svg;
  });
}

// A round step for an axis from 0 to `most`, about `ticks` steps.
function step(most, ticks) {
  const raw = Math.max(1, most / ticks);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// Leads per week and series: grouped columns while a week has room for them, lines after.
// Week labels are thinned so they never overlap, whatever the number of weeks (1 to 53).
function weekly(container, weeks, series, label) {
  const legend = el("ul", { class: "legend" });
  series.forEach((s, n) => {
    const key = el("li");
    key.append(el("span", { class: "swatch", style: `background:${COLOURS[n % COLOURS.length]}` }), s.name);
    legend.append(key);
  });
  draw(container, (width) => {
    const height = 190;
    const left = 34;
    const bottom = height - 22;
    const plot = width - left - 2 * TEXT_WIDTH; // room for half the newest week's label
    const slot = plot / Math.max(1, weeks.length);
    const most = Math.max(1, ...series.flatMap((s) => s.values));
    const unit = step(most, 4);
    const top = Math.ceil(most / unit) * unit;
    const y = (v) => bottom - ((bottom - 8) * v) / top;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
    for (let tick = 0; tick <= top; tick += unit) {
      svg.append(el("line", { x1: left, x2: width, y1: y(tick), y2: y(tick), class: "grid" }));
      svg.append(el("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, String(tick)));
    }
    const columns = series.length > 0 && slot / series.length >= 6;
    const barWidth = Math.min(22, (slot * 0.8) / Math.max(1, series.length));
    const centre = (i) => left + slot * (i + 0.5);
    series.forEach((s, n) => {
      const colour = COLOURS[n % COLOURS.length];
      if (columns) {
        s.values.forEach((v, i) => {
          const x = centre(i) + (n - series.length / 2) * barWidth;
          const column = el("rect", { x, y: y(v), width: Math.max(1, barWidth - 1), height: bottom - y(v), fill: colour, "data-value": v });
          column.append(el("title", {}, `${weeks[i]} · ${s.name}: ${v}`));
          svg.append(column);
        });
      } else {
        const points = s.values.map((v, i) => `${centre(i)},${y(v)}`).join(" ");
        svg.append(el("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2, "data-values": s.values.join(" ") }));
      }
    });
    const every = Math.ceil((TEXT_WIDTH * 4 + 8) / slot); // "W48" and a gap
    weeks.forEach((week, i) => {
      if ((weeks.length - 1 - i) % every !== 0) return; // the newest week is always labelled
      const text = el("text", { x: centre(i), y: height - 8, "text-anchor": "middle", class: "week" }, week.split("-")[1]);
      text.append(el("title", {}, week));
      svg.append(text);
    });
    return [svg, legend];
  });
}
