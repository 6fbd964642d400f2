// The dashboard: reads its state from the URL, asks the public stats API, draws. Every
// control edits the URL (history.pushState) and the page re-renders from it; Back and
// Forward (popstate) replay the history.

import { configure, run, realtimeVisitors } from './api.js'
import { h } from './dom.js'
import { siteLocal, siteToday, periodDays } from './dates.js'
import { drawGraph } from './graph.js'
import { drawNotes, loadNotes, notesByBucket } from './notes.js'
import { METRICS, metricFmt, exact, money } from './format.js'
import { revenueByCurrency } from './revenue.js'
import { app } from './app.js'
import { renderControls, bindShortcuts } from './controls.js'
import { renderPanels, refreshPanels } from './view.js'

// The modules are evaluated: bench/dashboard.py reports the time up to here.
performance.mark('avocet:start')
const { root, tz } = app
configure(root)
let generation = 0

const CORE = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration']
const GOAL = ['visitors', 'events', 'conversion_rate']
const GOAL_LABELS = { visitors: 'Unique conversions', events: 'Total conversions', conversion_rate: 'Conversion rate' }

function goalFiltered () {
  return app.state.filters.some(f => (f.key === 'goal' || f.key === 'event') && f.op === 'is')
}

function topMetrics () {
  if (app.state.period === 'realtime') return ['visitors', 'pageviews']
  return goalFiltered() ? GOAL : CORE
}

function graphMetric () {
  const metrics = topMetrics()
  return metrics.includes(app.state.metric) ? app.state.metric : 'visitors'
}

function defaultInterval () {
  const [from, to] = periodDays(app.state, siteToday(tz))
  const days = (Date.parse(to) - Date.parse(from)) / 864e5 + 1
  if (app.state.period === '24h' || days === 1) return 'hour'
  return days > 190 ? 'month' : days > 60 ? 'week' : 'day'
}

export function intervalOf () {
  if (app.state.period === 'realtime') return 'minute'
  const allowed = allowedIntervals()
  return allowed.includes(app.state.interval) ? app.state.interval : defaultInterval()
}

export function allowedIntervals () {
  if (app.state.period === '24h') return ['hour']
  const [from, to] = periodDays(app.state, siteToday(tz))
  const days = (Date.parse(to) - Date.parse(from)) / 864e5 + 1
  if (days === 1) return ['hour']
  const out = []
  if (days <= 31) out.push('hour')
  out.push('day')
  if (days >= 14) out.push('week')
  if (days >= 60) out.push('month')
  return out
}

// --- top stats ---------------------------------------------------------------------

export function aggregateRequest () {
  const metrics = topMetrics()
  const params = { metrics: metrics.join(',') }
  if (app.state.period !== 'realtime' && app.state.period !== 'all') params.compare = app.state.compare || 'previous_period'
  return { endpoint: 'aggregate', params }
}

async function loadTopStats (gen) {
  const list = document.getElementById('top-stats')
  list.setAttribute('aria-busy', 'true')
  let body
  let revenue = null
  try {
    // With a goal filter, its revenue per currency (a tile each, never a sum).
    ;[body, revenue] = await Promise.all([
      run(app.state, aggregateRequest()),
      goalFiltered() ? revenueByCurrency(app.state).catch(() => null) : null
    ])
  } catch (e) {
    if (gen !== generation) return
    list.textContent = ''
    list.append(h('li', { class: 'error-note' }, 'Could not load the numbers: ' + e.message))
    return
  }
  if (gen !== generation) return
  renderImportsNote(gen, 'top', body.meta)
  list.textContent = ''
  const chosen = graphMetric()
  const goal = topMetrics() === GOAL
  if (app.state.period === 'realtime') list.append(currentTile())
  for (const m of topMetrics()) {
    const value = body.metrics[m]
    const ch = body.change ? body.change[m] : null
    const label = goal ? GOAL_LABELS[m] : app.state.period === 'realtime' ? (m === 'visitors' ? 'Visitors · 30 min' : 'Pageviews · 30 min') : METRICS[m].label
    const good = ch == null || ch === 0 ? '' : (ch > 0) !== !!METRICS[m].lowerIsBetter ? 'up' : 'down'
    const compared = app.state.compare && body.comparison ? body.comparison.metrics[m] : null
    const tile = h('li', { class: 'stat' + (m === chosen ? ' active' : ''), dataset: { metric: m, value: value == null ? '' : String(value) } },
      h('button', { type: 'button', 'aria-pressed': String(m === chosen), title: value == null ? '' : exact(value), onclick: () => app.navigate({ ...app.state, metric: m }) },
        h('span', { class: 'stat-label' }, label),
        h('span', { class: 'stat-value' }, metricFmt(m, value)),
        ch != null ? h('span', { class: 'change ' + good, title: (ch > 0 ? 'Up ' : ch < 0 ? 'Down ' : 'Same ') + against() },
          h('span', { 'aria-hidden': 'true' }, ch > 0 ? '↑' : ch < 0 ? '↓' : ''),
          h('span', { class: 'visually-hidden' }, ch > 0 ? 'up ' : ch < 0 ? 'down ' : 'unchanged '),
          m === 'bounce_rate' ? Math.abs(ch) + ' pt' : Math.abs(ch) + '%',
          h('span', { class: 'visually-hidden' }, ' ' + against())) : null,
        compared != null ? h('span', { class: 'stat-cmp', dataset: { compareValue: String(compared) } }, 'vs ', metricFmt(m, compared)) : null
      ))
    list.append(tile)
  }
  for (const r of revenue || []) list.append(revenueTile(r))
  list.removeAttribute('aria-busy')
}

// With the imported data switch on, why the numbers leave it out when they do (the
// answer's meta.imports_skip_reason, Plausible's names).
const IMPORTS_SKIPPED = {
  unsupported_query: 'Imported data is left out: it holds daily totals per table, which can’t answer these filters.',
  unsupported_interval: 'Imported data is daily: it is left out of hourly and per-minute views.',
  out_of_range: 'No imported data falls in this period.',
  no_imported_data: 'This site has no imported data.'
}

// The reasons of this generation's answers (top numbers, graph): the first one is shown.
const importsSkipped = { gen: -1, top: null, graph: null }

function renderImportsNote (gen, part, meta) {
  const note = document.getElementById('imports-note')
  if (!note) return
  if (importsSkipped.gen !== gen) Object.assign(importsSkipped, { gen, top: null, graph: null })
  importsSkipped[part] = app.state.imported && meta && meta.imports_included === false ? meta.imports_skip_reason || 'other' : null
  const reason = importsSkipped.top || importsSkipped.graph
  note.textContent = reason ? (IMPORTS_SKIPPED[reason] || 'Imported data is left out of these numbers.') : ''
  note.hidden = !reason
}

// What a tile's change is measured against: the previous period unless the switch says
// year over year (the aggregate request always asks for one of the two).
function against () {
  return app.state.compare === 'year_over_year' ? 'vs the same period a year before' : 'vs the previous period'
}

function revenueTile (r) {
  return h('li', { class: 'stat', dataset: { metric: 'revenue', currency: r.currency, value: String(r.amount) } },
    h('div', { class: 'stat-static' },
      h('span', { class: 'stat-label' }, 'Revenue · ' + r.currency),
      h('span', { class: 'stat-value' }, money(r.amount, r.currency))))
}

function currentTile () {
  const n = root.dataset.current
  return h('li', { class: 'stat live-stat', dataset: { metric: 'current_visitors', value: n || '' } },
    h('div', { class: 'stat-static' },
      h('span', { class: 'stat-label' }, 'Current visitors'),
      h('span', { class: 'stat-value' }, n == null ? '—' : exact(Number(n)))))
}

// --- graph ---------------------------------------------------------------------------

function label (point) {
  return point.label != null ? point.label : siteLocal(tz, point.date)
}

function partialAndFuture (labels, interval) {
  const today = siteToday(tz)
  const nowLocal = siteLocal(tz, Date.now())
  let partial = -1
  let future = -1
  labels.forEach((l, i) => {
    const day = l.slice(0, 10)
    let start, current
    if (interval === 'hour') { start = l.slice(0, 13); current = nowLocal.slice(0, 13) } else if (interval === 'month') { start = day.slice(0, 7); current = today.slice(0, 7) } else { start = day; current = today }
    if (interval === 'minute') { partial = labels.length - 1; return }
    if (interval === 'week') {
      const next = labels[i + 1] ? labels[i + 1].slice(0, 10) : null
      if (day <= today && (!next || next > today)) { if (partial < 0 && periodDays(app.state, today)[1] >= today) partial = i }
      if (day > today && future < 0) future = i
      return
    }
    if (start === current && partial < 0) partial = i
    if (start > current && future < 0) future = i
  })
  return [partial, future]
}

export function graphRequest () {
  const params = { metrics: graphMetric(), interval: intervalOf() }
  if (app.state.compare) params.compare = app.state.compare
  return { endpoint: 'timeseries', params }
}

async function loadGraph (gen) {
  const box = document.getElementById('graph')
  const interval = intervalOf()
  renderIntervals(interval)
  const notesAsked = loadNotes(app.state)
  let body
  try { body = await run(app.state, graphRequest()) } catch (e) {
    if (gen !== generation) return
    box.textContent = ''
    box.append(h('p', { class: 'error-note' }, 'Could not load the graph: ' + e.message))
    return
  }
  if (gen !== generation) return
  renderImportsNote(gen, 'graph', body.meta)
  const metric = graphMetric()
  const labels = body.results.map(label)
  const [partial, future] = partialAndFuture(labels, interval)
  const notes = await notesAsked
  if (gen !== generation) return
  drawGraph(box, {
    notes: notesByBucket(labels, interval, notes),
    labels,
    values: body.results.map(p => p[metric]),
    metric,
    interval,
    partialIndex: partial,
    futureIndex: future,
    compare: body.comparison ? { labels: body.comparison.results.map(label), values: body.comparison.results.map(p => p[metric]) } : null
  })
  const title = topMetrics() === GOAL ? GOAL_LABELS[metric] : METRICS[metric].label
  drawNotes(notes)
  document.getElementById('graph-title').textContent = app.state.period === 'realtime' ? title + ' per minute, last 30 minutes' : title
}

function renderIntervals (current) {
  const box = document.getElementById('intervals')
  box.textContent = ''
  if (app.state.period === 'realtime') return
  for (const i of allowedIntervals()) {
    box.append(h('button', {
      type: 'button', class: 'seg' + (i === current ? ' on' : ''), 'aria-pressed': String(i === current),
      onclick: () => app.navigate({ ...app.state, interval: i })
    }, i[0].toUpperCase() + i.slice(1)))
  }
}

// --- realtime ------------------------------------------------------------------------

let realtimeTimer = null
async function pollRealtime () {
  clearTimeout(realtimeTimer)
  try {
    const body = await realtimeVisitors(5)
    root.dataset.current = String(body.current_visitors)
    const el = document.getElementById('current-visitors')
    el.dataset.value = String(body.current_visitors)
    el.querySelector('.n').textContent = exact(body.current_visitors)
    el.querySelector('.what').textContent = body.current_visitors === 1 ? ' current visitor' : ' current visitors'
    const tile = document.querySelector('[data-metric="current_visitors"]')
    if (tile) {
      tile.dataset.value = String(body.current_visitors)
      tile.querySelector('.stat-value').textContent = exact(body.current_visitors)
    }
  } catch (e) { /* keep the last figure; the next poll retries */ }
  realtimeTimer = setTimeout(pollRealtime, document.hidden ? 30000 : 10000)
}
document.addEventListener('visibilitychange', () => { if (!document.hidden) pollRealtime() })

let refreshTimer = null
function scheduleRealtimeRefresh () {
  clearTimeout(refreshTimer)
  if (app.state.period !== 'realtime') return
  refreshTimer = setTimeout(() => {
    const gen = generation
    loadTopStats(gen)
    loadGraph(gen)
    refreshPanels()
    scheduleRealtimeRefresh()
  }, 10000)
}

// --- the page --------------------------------------------------------------------------

export function render () {
  generation += 1
  const gen = generation
  // Every request goes out before any other drawing: each loader asks the API first.
  // Every panel rendered (or failed): the mark bench/dashboard.py times, on the first view.
  const done = Promise.allSettled([loadTopStats(gen), loadGraph(gen), renderPanels()])
  renderControls()
  // The current-visitors poll starts after the first view's panels, not competing with
  // their requests for the server.
  if (gen === 1) done.then(() => { performance.mark('avocet:ready'); pollRealtime() })
  scheduleRealtimeRefresh()
}

document.getElementById('current-visitors').addEventListener('click', () => {
  app.navigate({ ...app.state, period: 'realtime', from: null, to: null, compare: null, interval: null })
})
app.onChange(render)
bindShortcuts()
render()
root.classList.add('ready')
