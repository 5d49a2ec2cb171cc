// ECharts instances that follow their element's size.
// ECharts sizes its canvas once, at init; a grid or flex cell that changes afterwards (a window
// resize, a panel whose neighbour grows when its data arrives) would leave the canvas at its old
// size, overflowing onto whatever lies below it. A ResizeObserver covers every cause at once.

/** `echarts.init(el, theme, opts)`, resized whenever `el` changes size. */
export function fittedChart(el, theme = null, opts = undefined) {
  const chart = window.echarts.init(el, theme, opts);
  new ResizeObserver(() => chart.resize()).observe(el);
  return chart;
}
