// The Funnels tab: one funnel's steps (GET /api/v1/stats/funnel), each a bar of the visitors
// who reached it against those who entered, its conversion rate, and the drop-off from the
// step before. Funnels count every visitor of the period: not filtered, not realtime.

import { run } from './api.js'
import { h } from './dom.js'
import { exact, number } from './format.js'

const pct = v => (Math.round(v * 10) / 10).toLocaleString('en-US') + '%'

export async function loadFunnel (state, req, body) {
  const note = text => { body.removeAttribute('aria-busy'); body.append(h('p', { class: 'empty-note' }, text)) }
  if (state.filters.length) return note('Funnels count every visitor of the period: clear the filters to see this one.')
  if (state.period === 'realtime') return note('Funnels need a date range: pick one above.')
  let answer
  try {
    answer = await run(state, req)
  } catch (e) {
    if (!body.isConnected) return
    body.removeAttribute('aria-busy')
    body.append(h('p', { class: 'error-note' }, 'Could not load: ' + e.message))
    return
  }
  if (!body.isConnected) return
  body.removeAttribute('aria-busy')
  drawFunnel(body, answer)
}

export function drawFunnel (body, answer) {
  body.textContent = ''
  const entered = answer.entering_visitors
  body.append(h('p', { class: 'funnel-summary' },
    h('strong', null, number(entered)), ` of ${number(answer.all_visitors)} visitors entered (${pct(answer.entering_visitors_percentage)});`,
    ' ', h('strong', null, number(answer.steps[answer.steps.length - 1].visitors)), ` completed it (${pct(answer.steps[answer.steps.length - 1].conversion_rate)}).`))
  const list = h('ol', { class: 'funnel', 'aria-label': answer.funnel.name })
  answer.steps.forEach((step, i) => {
    const bar = h('span', { class: 'funnel-bar', 'aria-hidden': 'true' })
    bar.style.width = (entered ? step.visitors / entered * 100 : 0).toFixed(1) + '%'
    list.append(h('li', { class: 'funnel-step', dataset: { visitors: String(step.visitors) } },
      h('div', { class: 'funnel-head' },
        h('span', { class: 'funnel-name' }, h('span', { class: 'funnel-n' }, String(i + 1)), step.name),
        h('span', { class: 'num', title: exact(step.visitors) }, number(step.visitors), h('span', { class: 'muted' }, ' visitors'))),
      h('div', { class: 'funnel-track' }, bar),
      h('div', { class: 'funnel-meta muted' },
        i === 0 ? 'Entered the funnel' : `${pct(step.conversion_rate_step)} of step ${i} · ${number(step.dropoff)} dropped off (${pct(step.dropoff_percentage)})`,
        h('span', { class: 'num' }, pct(step.conversion_rate)))))
  })
  body.append(list)
}
