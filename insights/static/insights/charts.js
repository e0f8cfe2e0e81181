// Draws every <div data-figure="..."> from the JSON figure spec next to it (see templatetags/charts.py).
(function () {
  "use strict";
  function draw() {
    var nodes = document.querySelectorAll("[data-figure]");
    var pending = [];
    var t0 = performance.now();
    nodes.forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"]};
      pending.push(Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
        el.dataset.rendered = "1";
      }));
    });
    Promise.all(pending).then(function () {
      document.body.dataset.chartsRendered = String(nodes.length);
      document.body.dataset.chartsMs = String(Math.round(performance.now() - t0));
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
