// The main graph: uPlot over the buckets' indices (labels are the site's local times, so
// the browser's own zone never shifts a bucket), the comparison period as a dashed series,
// the current (partial) bucket as a dashed tail.

import uPlot from 'uplot'
import { h } from './dom.js'
import { monthLabel, shortDay } from './dates.js'
import { metricFmt, METRICS } from './format.js'

let plot = null
let observer = null

function css (name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() }

function tickLabel (label, interval) {
  if (!label) return ''
  if (interval === 'hour' || interval === 'minute') return label.slice(11, 16)
  if (interval === 'month') return monthLabel(label)
  return shortDay(label.slice(0, 10))
}

function fullLabel (label, interval) {
  if (!label) return ''
  if (interval === 'minute') return label.slice(11, 16)
  if (interval === 'hour') return shortDay(label.slice(0, 10)) + ', ' + label.slice(11, 16)
  if (interval === 'month') return monthLabel(label)
  if (interval === 'week') return 'Week of ' + shortDay(label.slice(0, 10), true)
  return shortDay(label.slice(0, 10), true)
}

function niceMax (max) {
  if (!max || max <= 0) return 4
  const pow = Math.pow(10, Math.floor(Math.log10(max)))
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * pow >= max * 1.05) return m * pow
  return 10 * pow
}

// series: {labels, values, partialFrom (index of the first partial/future bucket or -1),
// futureFrom, compare: {labels, values} | null, metric, interval, notes: Map(index ->
// annotations) | undefined}
export function drawGraph (container, series) {
  const { labels, values, metric, interval } = series
  container.dataset.points = JSON.stringify(values)
  container.dataset.labels = JSON.stringify(labels)
  const xs = labels.map((_, i) => i)
  const n = values.length
  const partial = series.partialIndex
  const future = series.futureIndex
  const solid = values.map((v, i) => (partial >= 0 && i >= partial) || (future >= 0 && i >= future) ? null : v)
  const tail = values.map((v, i) => partial >= 0 && (i === partial || i === partial - 1) ? v : null)
  const cmp = series.compare ? series.compare.values.slice(0, n) : null
  while (cmp && cmp.length < n) cmp.push(null)
  const data = [xs, solid, tail, cmp || xs.map(() => null)]
  const accent = css('--chart') || '#4f46e5'
  const muted = css('--muted') || '#888'
  const grid = css('--grid') || '#eee'
  const fmt = v => metricFmt(metric, v)
  const notes = series.notes || new Map()
  container.dataset.notes = JSON.stringify([...notes.keys()])
  const tip = h('div', { class: 'tip', hidden: true, role: 'presentation' })
  const opts = {
    width: Math.max(200, container.clientWidth),
    height: container.clientWidth < 500 ? 200 : 260,
    padding: [14, 24, 0, 4], // room for the last x label ("13:45") at the right edge
    legend: { show: false },
    cursor: { y: false, drag: { x: false, y: false }, points: { size: 9, width: 2, fill: css('--card') } },
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, niceMax(Math.max(max || 0, ...(cmp || []).filter(v => v != null)))] } },
    axes: [
      {
        stroke: muted, grid: { show: false }, ticks: { show: false }, space: 64, gap: 8,
        font: '12px system-ui, sans-serif',
        values: (u, splits) => splits.map(i => Number.isInteger(i) ? tickLabel(labels[i], interval) : '')
      },
      {
        stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 52, gap: 6, space: 40,
        font: '12px system-ui, sans-serif',
        values: (u, splits) => splits.map(v => metricFmt(metric === 'visit_duration' ? 'visit_duration' : 'visitors', v))
      }
    ],
    series: [
      {},
      {
        label: METRICS[metric] ? METRICS[metric].label : metric, stroke: accent, width: 2.5,
        fill: (u) => {
          const g = u.ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + u.bbox.height)
          g.addColorStop(0, css('--chart-fill') || 'rgba(79,70,229,.18)')
          g.addColorStop(1, 'rgba(0,0,0,0)')
          return g
        },
        points: { show: n < 40, size: 5, fill: accent }, spanGaps: false
      },
      { label: 'Partial', stroke: accent, width: 2.5, dash: [5, 5], points: { show: false } },
      { label: 'Comparison', stroke: css('--chart-cmp') || muted, width: 1.75, dash: [3, 4], points: { show: false }, show: !!cmp }
    ],
    hooks: {
      // Each annotated bucket: a dashed line and a dot above it.
      draw: [u => {
        if (!notes.size) return
        const ctx = u.ctx
        const r = devicePixelRatio || 1
        ctx.save()
        ctx.strokeStyle = ctx.fillStyle = css('--note') || muted
        ctx.lineWidth = r
        ctx.setLineDash([3 * r, 3 * r])
        for (const i of notes.keys()) {
          const x = Math.round(u.valToPos(i, 'x', true))
          ctx.beginPath()
          ctx.moveTo(x, u.bbox.top)
          ctx.lineTo(x, u.bbox.top + u.bbox.height)
          ctx.stroke()
          ctx.beginPath()
          ctx.arc(x, u.bbox.top, 3.5 * r, 0, 2 * Math.PI)
          ctx.fill()
        }
        ctx.restore()
      }],
      setCursor: [u => {
        const i = u.cursor.idx
        if (i == null || u.cursor.left < 0) { tip.hidden = true; return }
        tip.textContent = ''
        tip.append(
          h('div', { class: 'tip-date' }, fullLabel(labels[i], interval), i === partial ? ' (so far)' : ''),
          h('div', { class: 'tip-row' }, h('span', { class: 'swatch' }), h('strong', {}, fmt(values[i])), ' ', METRICS[metric] ? METRICS[metric].short.toLowerCase() : metric)
        )
        for (const note of notes.get(i) || []) tip.append(h('div', { class: 'tip-note' }, '✎ ' + note.text))
        if (cmp && series.compare.labels[i]) {
          tip.append(h('div', { class: 'tip-row cmp' }, h('span', { class: 'swatch cmp' }), h('strong', {}, fmt(cmp[i])), ' on ' + fullLabel(series.compare.labels[i], interval)))
        }
        tip.hidden = false
        const left = u.valToPos(i, 'x') + u.over.offsetLeft
        const w = tip.offsetWidth
        tip.style.left = Math.min(Math.max(0, left - w / 2), container.clientWidth - w) + 'px'
        tip.style.top = '0px'
      }]
    }
  }
  if (plot) plot.destroy()
  if (observer) observer.disconnect()
  container.textContent = ''
  plot = new uPlot(opts, data, container)
  container.append(tip)
  container.addEventListener('mouseleave', () => { tip.hidden = true })
  observer = new ResizeObserver(() => {
    if (plot && Math.abs(plot.width - container.clientWidth) > 2) {
      plot.setSize({ width: Math.max(200, container.clientWidth), height: container.clientWidth < 500 ? 200 : 260 })
    }
  })
  observer.observe(container)
}
