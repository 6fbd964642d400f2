// The controls: date picker (presets, calendar, ←/→), compare, filter chips and editor,
// keyboard shortcuts and their help. Each edits the URL through app.navigate.

import { app } from './app.js'
import { h, svgIcon, ICONS } from './dom.js'
import { MONTH_NAMES, dayAdd, monthAdd, periodDays, rangeLabel, siteToday, stepRange, weekday } from './dates.js'
import { FILTER_KEYS, OPS, PERIODS, filterLabel, withFilter, withoutFilter } from './state.js'
import { displayValue } from './panels.js'
import { canEdit, saveSegmentItem, segmentsMenu } from './segments.js'

// The tiles always show the change against the previous period (as Plausible's do); the
// switch draws the comparison period in the graph and picks which period that is.
const COMPARE = [['', 'Compare: off'], ['previous_period', 'Compare: previous period'], ['year_over_year', 'Compare: year over year']]

let openMenu = null
function closeMenu () {
  if (!openMenu) return
  const { menu, button } = openMenu
  menu.hidden = true
  button.setAttribute('aria-expanded', 'false')
  openMenu = null
}
function toggleMenu (button, menu, focusFirst) {
  if (openMenu && openMenu.menu === menu) { closeMenu(); return }
  closeMenu()
  menu.hidden = false
  button.setAttribute('aria-expanded', 'true')
  openMenu = { button, menu }
  if (focusFirst) { const first = menu.querySelector('[aria-current="true"], button, input, select'); if (first) first.focus() }
}
document.addEventListener('click', e => {
  if (openMenu && !openMenu.menu.contains(e.target) && !openMenu.button.contains(e.target)) closeMenu()
})
document.addEventListener('keydown', e => {
  if (e.key === 'Escape' && openMenu) { const b = openMenu.button; closeMenu(); b.focus() }
})

function periodLabel (state) {
  const found = PERIODS.find(p => p[0] === state.period)
  if (found && state.period !== 'custom') return found[1]
  const today = siteToday(app.tz)
  const [from, to] = periodDays(state, today)
  return rangeLabel(from, to, today)
}

export function renderControls () {
  const state = app.state
  renderDatePicker(state)
  renderCompare(state)
  renderImported(state)
  renderChips(state)
  renderFilterMenu()
}

// --- date picker ---------------------------------------------------------------------------

function renderDatePicker (state) {
  const box = document.getElementById('datepicker')
  box.textContent = ''
  const today = siteToday(app.tz)
  const canStep = !['realtime', '24h', 'all'].includes(state.period)
  const [, to] = periodDays(state, today)
  const step = dir => {
    const [f, t] = stepRange(state, today, dir)
    app.navigate({ ...state, period: 'custom', from: f, to: t })
  }
  const menu = h('div', { class: 'menu period-menu', id: 'period-menu', hidden: true })
  const button = h('button', { type: 'button', class: 'select-button', 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-controls': 'period-menu', id: 'period-button', onclick: () => toggleMenu(button, menu, true) },
    h('span', { class: 'period-label' }, periodLabel(state)), svgIcon(ICONS.chevron))
  const list = h('ul', { class: 'menu-list' })
  for (const [value, label, key] of PERIODS) {
    if (value === 'wtd') continue
    // A group ends after these: a rule under the item (a separator <li> would break the list).
    const groupEnd = value === 'realtime' || value === '90d' || value === 'month' || value === 'all'
    list.append(h('li', { class: groupEnd ? 'group-end' : null }, h('button', {
      type: 'button', class: 'menu-item', 'aria-current': state.period === value ? 'true' : null,
      dataset: { period: value },
      onclick: () => { closeMenu(); app.navigate({ ...state, period: value, from: null, to: null, interval: null }) }
    }, h('span', {}, label), key ? h('kbd', {}, key.toUpperCase()) : null)))
  }
  list.append(h('li', {}, h('button', { type: 'button', class: 'menu-item', 'aria-current': state.period === 'custom' ? 'true' : null, dataset: { period: 'custom' }, onclick: () => showCalendar(menu, state) }, h('span', {}, 'Custom range…'), h('kbd', {}, 'C'))))
  menu.append(list)
  box.append(
    h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Previous period', disabled: !canStep, id: 'step-back', onclick: () => step(-1) }, svgIcon(ICONS.left)),
    h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Next period', disabled: !canStep || to >= today, id: 'step-forward', onclick: () => step(1) }, svgIcon(ICONS.right)),
    h('div', { class: 'menu-wrap' }, button, menu)
  )
}

export function openCalendar () {
  const button = document.getElementById('period-button')
  const menu = document.getElementById('period-menu')
  if (menu.hidden) toggleMenu(button, menu, false)
  showCalendar(menu, app.state)
}

function showCalendar (menu, state) {
  const today = siteToday(app.tz)
  const [pf, pt] = periodDays(state, today)
  let from = state.period === 'custom' ? pf : null
  let to = state.period === 'custom' ? pt : null
  let month = (to || today).slice(0, 8) + '01'
  menu.textContent = ''
  menu.classList.add('calendar-open')
  const grid = h('div', { class: 'calendar' })
  const fromInput = h('input', { type: 'date', id: 'custom-from', max: today, value: from || '' })
  const toInput = h('input', { type: 'date', id: 'custom-to', max: today, value: to || '' })
  const apply = h('button', { type: 'button', class: 'primary', id: 'custom-apply', onclick: () => {
    const f = fromInput.value
    const t = toInput.value
    if (!f || !t) return
    closeMenu()
    menu.classList.remove('calendar-open')
    app.navigate({ ...state, period: 'custom', from: f <= t ? f : t, to: f <= t ? t : f, interval: null })
  } }, 'Apply')
  const draw = () => {
    grid.textContent = ''
    const first = month
    const head = h('div', { class: 'cal-head' },
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Previous month', onclick: () => { month = monthAdd(month, -1); draw() } }, svgIcon(ICONS.left)),
      h('strong', { 'aria-live': 'polite' }, MONTH_NAMES[Number(first.slice(5, 7)) - 1] + ' ' + first.slice(0, 4)),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Next month', disabled: monthAdd(month, 1) > today, onclick: () => { month = monthAdd(month, 1); draw() } }, svgIcon(ICONS.right)))
    const days = h('div', { class: 'cal-grid', role: 'group', 'aria-label': 'Days' })
    for (const d of ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su']) days.append(h('span', { class: 'cal-dow', 'aria-hidden': 'true' }, d))
    for (let i = 0; i < weekday(first); i++) days.append(h('span'))
    for (let d = first; d.slice(0, 7) === first.slice(0, 7); d = dayAdd(d, 1)) {
      const day = d
      const inRange = from && to && day >= from && day <= to
      days.append(h('button', {
        type: 'button', class: 'cal-day' + (inRange ? ' in' : '') + (day === from || day === to ? ' end' : '') + (day === today ? ' today' : ''),
        disabled: day > today, 'aria-pressed': String(!!inRange), 'aria-label': day,
        onclick: () => {
          if (!from || (from && to)) { from = day; to = null } else if (day < from) { to = from; from = day } else { to = day }
          fromInput.value = from || ''
          toInput.value = to || ''
          draw()
        }
      }, String(Number(day.slice(8)))))
    }
    grid.append(head, days)
  }
  draw()
  menu.append(grid, h('div', { class: 'cal-inputs' },
    h('label', { for: 'custom-from' }, 'From'), fromInput, h('label', { for: 'custom-to' }, 'To'), toInput, apply))
  fromInput.focus()
}

function renderCompare (state) {
  const box = document.getElementById('compare')
  box.textContent = ''
  if (state.period === 'realtime' || state.period === 'all') return
  const select = h('select', { id: 'compare-select', 'aria-label': 'Compare in the graph', onchange: () => app.navigate({ ...app.state, compare: select.value || null }) })
  for (const [v, label] of COMPARE) select.append(h('option', { value: v, selected: (state.compare || '') === v }, label))
  box.append(select)
}

// The "imported data" switch (#imported: the page has it when the site has imported aggregates).
function renderImported (state) {
  const box = document.getElementById('imported')
  if (!box) return
  box.textContent = ''
  const input = h('input', { type: 'checkbox', id: 'with-imported', checked: state.imported, onchange: () => app.navigate({ ...app.state, imported: input.checked }) })
  box.append(h('label', { class: 'switch', for: 'with-imported', title: 'Add the imported daily aggregates where they can answer (not to hourly graphs, nor to filters on properties of two tables)' },
    input, h('span', {}, 'Imported data')))
}

// --- filters ---------------------------------------------------------------------------------

function chipValue (f) {
  return f.values.map(v => displayValue(f.key, v)).join(' or ')
}

function renderChips (state) {
  const box = document.getElementById('filters')
  box.textContent = ''
  state.filters.forEach((f, i) => {
    box.append(h('li', { class: 'chip', dataset: { key: f.key, op: f.op, value: f.values.join('|') } },
      h('span', { class: 'chip-text' }, h('span', { class: 'chip-key' }, filterLabel(f.key)), ' ', OPS[f.op], ' ', h('strong', {}, chipValue(f))),
      h('button', { type: 'button', class: 'chip-remove', 'aria-label': 'Remove filter ' + filterLabel(f.key) + ' ' + OPS[f.op] + ' ' + f.values.join(' or '), onclick: () => app.navigate(withoutFilter(app.state, i)) }, svgIcon(ICONS.close))))
  })
  if (state.filters.length > 1) {
    box.append(h('li', {}, h('button', { type: 'button', class: 'link-button', id: 'clear-filters', onclick: () => app.navigate({ ...app.state, filters: [] }) }, 'Clear all')))
  }
  if (state.filters.length && canEdit()) box.append(saveSegmentItem(state, () => renderControls()))
}

function renderFilterMenu () {
  const wrap = document.getElementById('filter-add')
  if (wrap.dataset.built) { document.getElementById('segments').redraw(); return }
  wrap.dataset.built = '1'
  const menu = h('form', { class: 'menu filter-menu', id: 'filter-menu', hidden: true, 'aria-label': 'Add a filter' })
  const button = h('button', { type: 'button', class: 'select-button', id: 'filter-button', 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-controls': 'filter-menu', onclick: () => toggleMenu(button, menu, true) }, svgIcon(ICONS.filter), h('span', {}, 'Filter'))
  const prop = h('select', { id: 'filter-prop' })
  for (const k of FILTER_KEYS) if (k !== 'goal' || app.goals.length) prop.append(h('option', { value: k }, filterLabel(k)))
  prop.append(h('option', { value: 'prop:' }, 'Custom property…'))
  const propKey = h('input', { type: 'text', id: 'filter-prop-key', placeholder: 'key, e.g. plan', hidden: true, autocomplete: 'off' })
  const op = h('select', { id: 'filter-op' })
  for (const [v, label] of Object.entries(OPS)) op.append(h('option', { value: v }, label))
  const value = h('input', { type: 'text', id: 'filter-value', required: true, autocomplete: 'off', list: 'filter-goals', placeholder: 'value (* matches anything)' })
  const goalsList = h('datalist', { id: 'filter-goals' })
  const sync = () => {
    propKey.hidden = prop.value !== 'prop:'
    goalsList.textContent = ''
    if (prop.value === 'goal') for (const g of app.goals) goalsList.append(h('option', { value: g }))
  }
  prop.addEventListener('change', sync)
  menu.addEventListener('submit', e => {
    e.preventDefault()
    const key = prop.value === 'prop:' ? 'prop:' + propKey.value.trim() : prop.value
    const values = value.value.split('|').map(v => v.trim()).filter(Boolean)
    if (!values.length || key === 'prop:') return
    closeMenu()
    value.value = ''
    app.navigate(withFilter(app.state, { key, op: op.value, values }))
  })
  menu.append(
    segmentsMenu(closeMenu),
    h('div', { class: 'field-row' }, h('label', { for: 'filter-prop' }, 'Property'), prop, propKey),
    h('div', { class: 'field-row' }, h('label', { for: 'filter-op' }, 'Operator'), op),
    h('div', { class: 'field-row' }, h('label', { for: 'filter-value' }, 'Value'), value, goalsList),
    h('p', { class: 'hint' }, 'Several values: separate them with |.'),
    h('button', { type: 'submit', class: 'primary', id: 'filter-apply' }, 'Add filter'))
  wrap.append(button, menu)
}

// --- shortcuts -------------------------------------------------------------------------------

const SHORTCUTS = Object.fromEntries(PERIODS.filter(p => p[2]).map(p => [p[2], p[0]]))

export function bindShortcuts () {
  const help = document.getElementById('shortcuts')
  const helpButton = document.getElementById('shortcuts-button')
  const list = help.querySelector('dl')
  for (const [value, label, key] of PERIODS) if (key) list.append(h('dt', {}, h('kbd', {}, key.toUpperCase())), h('dd', {}, label))
  list.append(h('dt', {}, h('kbd', {}, 'C')), h('dd', {}, 'Custom range'))
  list.append(h('dt', {}, h('kbd', {}, 'X')), h('dd', {}, 'Compare with the previous period (on / off)'))
  list.append(h('dt', {}, h('kbd', {}, '←'), ' ', h('kbd', {}, '→')), h('dd', {}, 'Previous / next period'))
  list.append(h('dt', {}, h('kbd', {}, '?')), h('dd', {}, 'This list'))
  helpButton.addEventListener('click', () => toggleMenu(helpButton, help, false))
  document.addEventListener('keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey) return
    const t = e.target
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return
    if (document.querySelector('dialog[open]')) return
    const state = app.state
    const key = e.key.toLowerCase()
    if (SHORTCUTS[key]) {
      e.preventDefault()
      closeMenu()
      app.navigate({ ...state, period: SHORTCUTS[key], from: null, to: null, interval: null })
    } else if (key === 'c') {
      e.preventDefault()
      openCalendar()
    } else if (key === 'x') {
      e.preventDefault()
      if (state.period !== 'realtime' && state.period !== 'all') app.navigate({ ...state, compare: state.compare ? null : 'previous_period' })
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const b = document.getElementById(e.key === 'ArrowLeft' ? 'step-back' : 'step-forward')
      if (b && !b.disabled) { e.preventDefault(); b.click() }
    } else if (e.key === '?') {
      e.preventDefault()
      toggleMenu(helpButton, help, false)
    }
  })
}
