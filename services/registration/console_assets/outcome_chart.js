// A webhook's deliveries by outcome per hour: stacked bars drawn by Chart.js (vendored,
// loaded by the page as the global `Chart`), with the same numbers as text for screen readers.

import { h, parseApiTime } from "./dom.js";

const OUTCOMES = [
  ["succeeded", "#1a7f37"],
  ["failed", "#cf222e"],
  ["pending", "#bf8700"],
  ["not_attempted", "#6e7781"],
  ["cancelled", "#8250df"],
];

export function outcomeChart() {
  const canvas = h("canvas", { role: "img" });
  const element = h("div", { class: "chart" }, canvas);
  let chart = null;
  let latest = null;

  function apply() {
    if (chart === null || latest === null) return;
    chart.data.labels = latest.buckets.map((bucket) =>
      parseApiTime(bucket.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    chart.data.datasets.forEach((dataset, index) => {
      dataset.data = latest.buckets.map((bucket) => bucket[OUTCOMES[index][0]]);
    });
    chart.update("none");
    const totals = OUTCOMES.map(([outcome]) => `${latest.totals[outcome]} ${outcome}`).join(", ");
    canvas.setAttribute("aria-label", `Deliveries of the last ${latest.hours} h by hour: ${totals}.`);
  }

  return {
    element,
    update(stats) {
      latest = stats;
      apply();
    },
    /** Once the canvas is on the page (Chart.js measures its container). */
    draw() {
      chart = new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: [],
          datasets: OUTCOMES.map(([outcome, color]) => ({ label: outcome, data: [], backgroundColor: color })),
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            x: { stacked: true, ticks: { autoSkip: true, maxRotation: 0 } },
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
          },
          plugins: { legend: { position: "bottom" } },
        },
      });
      apply();
    },
  };
}
