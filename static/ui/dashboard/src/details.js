// Two dialogs: a panel's details (every metric, search, sort by any column, paging, CSV)
// and the "API" view (the exact request, native and Plausible v2, with curl).

import { app } from './app.js'
import { run, describe } from './api.js'
import { h, svgIcon, ICONS } from './dom.js'
import { exact, metricFmt, metricLabel, moneyList } from './format.js'
import { rowLabel } from './panels.js'
import { withFilter } from './state.js'
import { goalRows } from './goals.js'

const PAGE = 50

function dialog (title, cls) {
  const el = h('dialog', { class: 'sheet ' + (cls || ''), 'aria-labelledby': 'dialog-title' })
  const close = h('button', { type: 'button', class: 'icon-button close', 'aria-label': 'Close', onclick: () => el.close() }, svgIcon(ICONS.close))
  el.append(h('header', { class: 'sheet-head' }, h('h2', { id: 'dialog-title' }, title), close))
  el.addEventListener('close', () => el.remove())
  el.addEventListener('click', e => { if (e.target === el) el.close() })
  document.body.append(el)
  return el
}

export function openApi (title, d) {
  const el = dialog('API · ' + title, 'api-sheet')
  const block = (label, text, id) => h('div', { class: 'code-block' },
    h('div', { class: 'code-head' }, h('h3', {}, label), h('button', { type: 'button', class: 'small', onclick: e => copy(text, e.target) }, 'Copy')),
    // Focusable: a long body scrolls, and a keyboard must reach it (axe: scrollable-region-focusable).
    h('pre', { id, tabindex: '0', 'aria-label': label }, h('code', {}, text)))
  el.append(h('div', { class: 'sheet-body' },
    h('p', { class: 'hint' }, 'This panel is this request to the public stats API. ', d.usesV2 ? 'The page sent the v2 form (the native one has no "is not" or 30-minute window).' : 'The page sent the native form; the v2 body asks the same question.'),
    block('Native GET', d.native, 'api-native'),
    block('curl', d.nativeCurl, 'api-native-curl'),
    block('Plausible v2 · POST /api/v2/query', d.v2, 'api-v2'),
    block('curl', d.v2Curl, 'api-v2-curl')))
  el.showModal()
}

function copy (text, button) {
  const done = () => { button.textContent = 'Copied' }
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => {})
  else {
    const area = h('textarea', { readonly: true })
    area.value = text
    document.body.append(area)
    area.select()
    document.execCommand('copy')
    area.remove()
    done()
  }
}

export function openDetails (panel, tab, variant) {
  const state = app.state
  const property = typeof tab.property === 'function' ? tab.property(state, variant) : tab.property
  const metrics = tab.details
  const el = dialog(panel.title === tab.label ? tab.label : panel.title + ' · ' + tab.label, 'details-sheet')
  let sort = metrics[0] + '.desc'
  let page = 1
  let search = ''
  let total = 0
  let rows = []
  const searchInput = h('input', { type: 'search', placeholder: 'Search', 'aria-label': 'Search ' + tab.label, class: 'search' })
  const status = h('p', { class: 'hint', role: 'status' })
  const table = h('table', { class: 'details' })
  const prev = h('button', { type: 'button', class: 'small', onclick: () => { page -= 1; load() } }, 'Previous')
  const next = h('button', { type: 'button', class: 'small', onclick: () => { page += 1; load() } }, 'Next')
  const csv = h('button', { type: 'button', class: 'small', onclick: () => download() }, svgIcon(ICONS.download), 'CSV')
  let timer = null
  searchInput.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { search = searchInput.value.trim(); page = 1; load() }, 250) })
  el.append(h('div', { class: 'sheet-tools' }, tab.goals ? null : searchInput, csv),
    h('div', { class: 'sheet-body table-scroll' }, table),
    h('footer', { class: 'sheet-foot' }, status, h('div', { class: 'pager' }, prev, next)))

  const scoped = () => search ? withFilter(state, { key: tab.filterKey || property, op: 'contains', values: [search] }) : state
  const request = (limit, pageNumber) => {
    const base = tab.request(state, variant)
    return { endpoint: 'breakdown', params: { ...base.params, metrics: metrics.join(','), sort, limit, page_number: pageNumber } }
  }

  async function fetchRows (limit, pageNumber) {
    if (tab.goals) {
      const [m, dir] = sort.split('.')
      const all = (await goalRows(state, metrics)).sort((a, b) => (dir === 'desc' ? -1 : 1) * (a[m] - b[m]))
      return { results: all, pagination: { total_rows: all.length } }
    }
    return run(scoped(), request(limit, pageNumber))
  }

  async function load () {
    table.setAttribute('aria-busy', 'true')
    try {
      const body = await fetchRows(PAGE, page)
      rows = tab.skip ? body.results.filter(r => !tab.skip(r)) : body.results
      total = body.pagination.total_rows
    } catch (e) {
      status.textContent = 'Could not load: ' + e.message
      return
    }
    drawTable()
    table.removeAttribute('aria-busy')
    const pages = Math.max(1, Math.ceil(total / PAGE))
    status.textContent = total + ' rows' + (pages > 1 ? ' · page ' + page + ' of ' + pages : '')
    prev.disabled = page <= 1
    next.disabled = page >= pages
  }

  function drawTable () {
    table.textContent = ''
    const [sm, sd] = sort.split('.')
    const headRow = h('tr', {}, h('th', { scope: 'col' }, tab.label))
    for (const m of metrics) {
      const dir = sm === m ? (sd === 'desc' ? 'descending' : 'ascending') : 'none'
      headRow.append(h('th', { scope: 'col', class: 'num', 'aria-sort': dir },
        h('button', { type: 'button', class: 'sort', onclick: () => { sort = m + '.' + (sm === m && sd === 'desc' ? 'asc' : 'desc'); page = 1; load() } },
          metricLabel(m), h('span', { 'aria-hidden': 'true' }, sm === m ? (sd === 'desc' ? ' ↓' : ' ↑') : ''))))
    }
    // Goals' revenue, per currency (not sortable: amounts in different currencies).
    const money = tab.goals && rows.some(r => r.revenue)
    if (money) headRow.append(h('th', { scope: 'col', class: 'num' }, 'Revenue'))
    const tbody = h('tbody')
    for (const r of rows) {
      const [glyph, text] = rowLabel(property, r.value)
      const empty = r.value == null || r.value === ''
      tbody.append(h('tr', { dataset: { property, value: empty ? '' : String(r.value), visitors: String(r.visitors) } },
        h('th', { scope: 'row' }, empty ? text : h('button', { type: 'button', class: 'link-button', onclick: () => { el.close(); app.navigate(withFilter(app.state, { key: tab.goals ? 'goal' : (tab.filterKey || property), op: 'is', values: [String(r.value)] })) } }, glyph ? glyph + ' ' : '', text)),
        ...metrics.map(m => h('td', { class: 'num', title: exact(r[m]) }, metricFmt(m, r[m]))),
        money ? h('td', { class: 'num money', dataset: { revenue: JSON.stringify(r.revenue || []) } }, moneyList(r.revenue)) : null))
    }
    table.append(h('thead', {}, headRow), tbody)
  }

  async function download () {
    const quote = v => { const s = v == null ? '' : String(v); return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s }
    const found = []
    for (let p = 1; p <= 20; p++) {
      const body = await fetchRows(1000, p)
      found.push(...body.results)
      if (tab.goals || p * 1000 >= body.pagination.total_rows) break
    }
    // Revenue: a column per currency (revenue_EUR, revenue_USD), never one summed column.
    const currencies = [...new Set(found.flatMap(r => (r.revenue || []).map(x => x.currency)))].sort()
    const amount = (r, c) => { const x = (r.revenue || []).find(x => x.currency === c); return x ? x.amount : '' }
    const lines = [[property, ...metrics, ...currencies.map(c => 'revenue_' + c)].join(',')]
    for (const r of found) lines.push([r.value, ...metrics.map(m => r[m]), ...currencies.map(c => amount(r, c))].map(quote).join(','))
    const blob = new Blob([lines.join('\n') + '\n'], { type: 'text/csv' })
    const a = h('a', { href: URL.createObjectURL(blob), download: (app.root.dataset.domain + '-' + tab.id + '.csv') })
    document.body.append(a)
    a.click()
    a.remove()
  }

  el.showModal()
  load()
}

export { describe }
