// Panels drawn from the PANELS list: tabs, rows with proportional bars (a click filters
// by the row), and each panel's "Details" and "API" views.

import { app } from './app.js'
import { run, describe } from './api.js'
import { h, svgIcon, ICONS } from './dom.js'
import { exact, metricFmt, metricLabel, number } from './format.js'
import { PANELS, rowLabel, LIST } from './panels.js'
import { withFilter } from './state.js'
import { openDetails, openApi } from './details.js'
import { GOAL_METRICS, goalRows } from './goals.js'
import { loadFunnel } from './funnel.js'

const store = {
  get (k, d) { try { return localStorage.getItem('avocet.' + k) || d } catch (e) { return d } },
  set (k, v) { try { localStorage.setItem('avocet.' + k, v) } catch (e) { /* private mode */ } }
}

function resolve (v, state, variant) { return typeof v === 'function' ? v(state, variant) : v }

export function tabOf (panel) {
  const tabs = visibleTabs(panel)
  const id = store.get('tab.' + panel.id, tabs[0].id)
  return tabs.find(t => t.id === id) || tabs[0]
}

function visibleTabs (panel) {
  return panel.tabs.filter(t => !(t.goals && !app.goals.length) && !(t.funnels && !app.funnels.length))
}

export function variantOf (tab) {
  if (tab.variants) return store.get('variant.' + tab.id, tab.variants[0][0])
  if (tab.propKey) return store.get('propkey', '')
  if (tab.funnels) {
    const id = store.get('funnel', '')
    return app.funnels.some(f => f.id === id) ? id : app.funnels[0].id
  }
  return null
}

export function requestOf (tab, state, variant) {
  if (tab.funnels) return { endpoint: 'funnel', params: { funnel_id: variant } }
  if (tab.goals) {
    const name = app.goals[0]
    return { endpoint: 'aggregate', params: { metrics: 'visitors,events,conversion_rate', goal: name } }
  }
  return tab.request(state, variant)
}

const mounted = new Map()

export function renderPanels () {
  const grid = document.getElementById('panels')
  if (!grid.childElementCount) {
    for (const panel of PANELS) {
      const el = h('section', { class: 'panel' + (panel.wide ? ' wide' : ''), id: 'panel-' + panel.id, 'aria-labelledby': 'ph-' + panel.id })
      grid.append(el)
      mounted.set(panel.id, el)
    }
  }
  return Promise.all(PANELS.map(panel => drawPanel(panel)))
}

export function refreshPanels () { for (const panel of PANELS) drawPanel(panel, true) }

function drawPanel (panel, quiet) {
  const el = mounted.get(panel.id)
  const state = app.state
  const tab = tabOf(panel)
  const variant = variantOf(tab)
  const title = resolve(tab.title, state) || panel.title
  const tabs = h('div', { class: 'tabs-row', role: 'group', 'aria-label': panel.title + ' views' })
  for (const t of visibleTabs(panel)) {
    tabs.append(h('button', {
      type: 'button', class: 'tab' + (t === tab ? ' on' : ''), 'aria-pressed': String(t === tab), dataset: { tab: t.id }, title: t.short ? t.label : null,
      onclick: () => { store.set('tab.' + panel.id, t.id); drawPanel(panel) }
    }, t.short || t.label))
  }
  const head = h('header', { class: 'panel-head' }, h('h2', { id: 'ph-' + panel.id }, title), tabs)
  const body = h('div', { class: 'panel-body', 'aria-busy': 'true' })
  const foot = h('footer', { class: 'panel-foot' })
  const extra = variantPicker(panel, tab, variant)
  if (!quiet || !el.childElementCount) {
    el.textContent = ''
    el.append(...[head, extra, body, foot].filter(Boolean))
    el.dataset.tab = tab.id
  } else {
    el.querySelector('.panel-body').replaceWith(body)
    el.querySelector('.panel-foot').replaceWith(foot)
  }
  return loadPanel(panel, tab, variant, body, foot)
}

function variantPicker (panel, tab, variant) {
  if (tab.variants) {
    const select = h('select', { class: 'variant', 'aria-label': 'Campaign property', onchange: () => { store.set('variant.' + tab.id, select.value); drawPanel(panel) } })
    for (const [v, label] of tab.variants) select.append(h('option', { value: v, selected: v === variant }, label))
    return h('div', { class: 'panel-sub' }, select)
  }
  if (tab.funnels) {
    const select = h('select', { class: 'variant', 'aria-label': 'Funnel', onchange: () => { store.set('funnel', select.value); drawPanel(panel) } })
    for (const f of app.funnels) select.append(h('option', { value: f.id, selected: f.id === variant }, f.name))
    return h('div', { class: 'panel-sub' }, select)
  }
  if (tab.propKey) {
    const input = h('input', { type: 'text', class: 'variant', value: variant, placeholder: 'Property key, e.g. plan', 'aria-label': 'Custom property key', autocomplete: 'off' })
    const form = h('form', { class: 'panel-sub', onsubmit: e => { e.preventDefault(); store.set('propkey', input.value.trim()); drawPanel(panel) } },
      input, h('button', { type: 'submit', class: 'small' }, 'Show'))
    return form
  }
  return null
}

async function loadPanel (panel, tab, variant, body, foot) {
  const state = app.state
  const property = resolve(tab.property, state, variant)
  const req = requestOf(tab, state, variant)
  if (!req) {
    body.removeAttribute('aria-busy')
    body.append(h('p', { class: 'empty-note' }, 'Type a custom property key to see its values.'))
    return
  }
  if (tab.funnels) return loadFunnel(app.state, req, body)
  // The map's chunk (its shapes projected at build time) loads while the API answers.
  const mapReady = tab.map ? import('./map.js') : null
  if (mapReady) mapReady.catch(() => {}) // a failed answer returns before awaiting it
  let rows
  try {
    rows = tab.goals ? await goalRows(state) : (await run(state, req)).results
  } catch (e) {
    if (!body.isConnected) return
    body.removeAttribute('aria-busy')
    body.append(h('p', { class: 'error-note' }, 'Could not load: ' + e.message))
    return
  }
  if (!body.isConnected) return
  body.removeAttribute('aria-busy')
  if (tab.skip) rows = rows.filter(r => !tab.skip(r))
  if (tab.map) {
    body.classList.add('map-body')
    const { drawMap } = await mapReady
    if (!body.isConnected) return
    drawMap(body, rows, code => app.navigate(withFilter(app.state, { key: 'country', op: 'is', values: [code] })))
  } else {
    // Goals: a revenue column once any goal has revenue (per currency, never summed).
    const metrics = tab.goals && rows.some(r => r.revenue) ? [...GOAL_METRICS, 'revenue'] : null
    drawRows(body, rows.slice(0, LIST), property, tab, req, metrics)
  }
  foot.append(
    h('button', { type: 'button', class: 'foot-button', onclick: () => openDetails(panel, tab, variant) }, svgIcon(ICONS.expand), 'Details'),
    h('button', { type: 'button', class: 'foot-button', onclick: () => openApi(panel.title, describe(app.state, req)) }, svgIcon(ICONS.code), 'API'))
}

export function drawRows (body, rows, property, tab, req, metrics) {
  body.textContent = ''
  if (!rows.length) { body.append(h('p', { class: 'empty-note' }, 'No data for this period')); return }
  const shown = metrics || (req.params.metrics || 'visitors').split(',')
  const cols = shown.slice(1)
  const max = Math.max(...rows.map(r => r.visitors || 0), 1)
  const filterKey = tab.filterKey || property
  const table = h('div', { class: 'rows', role: 'table', 'aria-label': tab.label })
  // One column template for every row (each row is a grid of its own): label, the
  // secondary metrics, visitors; a revenue column is wider (several currencies).
  table.style.setProperty('--cols', ['minmax(0, 1fr)', ...cols.map(m => m === 'revenue' ? 'minmax(4.5rem, 15rem)' : '4.5rem'), '4.5rem'].join(' '))
  table.append(h('div', { class: 'row row-head', role: 'row' },
    h('span', { role: 'columnheader', class: 'cell-label' }, tab.label.replace(/^Top /, '')),
    ...cols.map(m => h('span', { role: 'columnheader', class: 'num secondary' }, metricLabel(m))),
    h('span', { role: 'columnheader', class: 'num' }, 'Visitors')))
  for (const r of rows) {
    const [glyph, text] = rowLabel(property, r.value)
    const bar = h('span', { class: 'bar', 'aria-hidden': 'true' })
    bar.style.width = ((r.visitors || 0) / max * 100).toFixed(1) + '%'
    const empty = r.value == null || r.value === ''
    const label = empty ? h('span', { class: 'static-label' }, h('span', { class: 'label-text' }, text)) : h('button', {
      type: 'button', class: 'row-label', title: 'Filter by ' + text,
      onclick: () => app.navigate(withFilter(app.state, { key: filterKey, op: 'is', values: [r.value == null ? '' : String(r.value)] }))
    }, glyph ? h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyph) : null, h('span', { class: 'label-text' }, text))
    table.append(h('div', { class: 'row', role: 'row', dataset: { property, value: r.value == null ? '' : String(r.value), visitors: String(r.visitors) } },
      h('span', { role: 'cell', class: 'cell-label' }, bar, label),
      ...cols.map(m => m === 'revenue'
        ? h('span', { role: 'cell', class: 'num muted secondary money', dataset: { revenue: JSON.stringify(r.revenue || []) } }, metricFmt(m, r.revenue))
        : h('span', { role: 'cell', class: 'num muted secondary', title: exact(r[m]) }, metricFmt(m, r[m]))),
      h('span', { role: 'cell', class: 'num', title: exact(r.visitors) }, number(r.visitors))))
  }
  body.append(table)
}
