// Number formats shared by the driver's console tables and bench/report.mjs.
export const thousands = (n) => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : "-");
export const micros = (n) => (!Number.isFinite(n) ? "-" : n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n.toFixed(0)} µs`);
export const mebibytes = (n) => (Number.isFinite(n) && n > 0 ? `${(n / 1024 / 1024).toFixed(0)} MiB` : "-");
export const percent = (n) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : "-");
export const times = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "-");
