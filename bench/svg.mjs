// A horizontal grouped bar chart as plain SVG (no scripts, no external fonts), for the charts
// bench/report.mjs writes: GitHub renders such a file from a relative image link.
const WIDTH = 760;
const LABEL_WIDTH = 190;
const VALUE_WIDTH = 60;
const BAR_HEIGHT = 14;
const BAR_GAP = 3;
const GROUP_GAP = 12;
const TOP = 46;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

const escape = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * groups: [{ label, bars: [{ value, color }] }] (a NaN value draws no bar and prints "-"); series:
 * [{ label, color }] for the legend; markers: [{ value, label }] drawn as dashed vertical lines;
 * axisMax: values beyond it are drawn to the edge, ending in a zigzag, so one outlier keeps the
 * others readable.
 */
export function barChart({ title, groups, series, markers = [], format = (v) => v.toFixed(2), axisMax = Infinity }) {
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite);
  const scaleMax = Math.min(axisMax, Math.max(...values, ...markers.map((m) => m.value), 1e-9) * 1.05);
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 10;
  const x = (value) => LABEL_WIDTH + (Math.min(Math.max(0, value), scaleMax) / scaleMax) * plotWidth;
  const parts = [];
  let y = TOP;
  for (const group of groups) {
    const height = group.bars.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    parts.push(`<text x="${LABEL_WIDTH - 8}" y="${y + height / 2 + 4}" text-anchor="end" font-size="12" ${FONT}>${escape(group.label)}</text>`);
    for (const bar of group.bars) {
      if (Number.isFinite(bar.value)) {
        parts.push(`<rect x="${LABEL_WIDTH}" y="${y}" width="${(x(bar.value) - LABEL_WIDTH).toFixed(1)}" height="${BAR_HEIGHT}" fill="${bar.color}"/>`);
        if (bar.value > scaleMax) {
          const end = x(bar.value);
          parts.push(`<polyline points="${end - 6},${y} ${end - 2},${y + BAR_HEIGHT / 2} ${end - 6},${y + BAR_HEIGHT}" fill="none" stroke="#fff" stroke-width="2"/>`);
        }
      }
      const label = Number.isFinite(bar.value) ? format(bar.value) : "-";
      parts.push(`<text x="${(Number.isFinite(bar.value) ? x(bar.value) : LABEL_WIDTH) + 4}" y="${y + BAR_HEIGHT - 3}" font-size="11" ${FONT}>${escape(label)}</text>`);
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += GROUP_GAP;
  }
  const bottom = y;
  markers.forEach((marker, index) => {
    const mx = x(marker.value).toFixed(1);
    const anchor = index % 2 ? "start" : "end"; // neighbours' labels on either side of their lines
    parts.push(`<line x1="${mx}" y1="${TOP - 6}" x2="${mx}" y2="${bottom - GROUP_GAP}" stroke="#555" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${mx}" dx="${index % 2 ? 3 : -3}" y="${bottom + 4}" text-anchor="${anchor}" font-size="11" fill="#555" ${FONT}>${escape(marker.label)}</text>`);
  });
  let lx = LABEL_WIDTH;
  const legend = series.map((s) => {
    const item = `<rect x="${lx}" y="26" width="12" height="12" fill="${s.color}"/><text x="${lx + 16}" y="36" font-size="12" ${FONT}>${escape(s.label)}</text>`;
    lx += 24 + s.label.length * 7;
    return item;
  });
  const height = bottom + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold" ${FONT}>${escape(title)}</text>`,
    ...legend, ...parts, "</svg>", "",
  ].join("\n");
}
