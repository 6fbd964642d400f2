// The Goals panel's rows (the panel and its Details view both draw them): each configured
// goal's conversions, asked one aggregate per goal, with its revenue per currency when it
// has any; most converting visitors first.

import { app } from './app.js'
import { run } from './api.js'
import { goalRevenue } from './revenue.js'

export const GOAL_METRICS = ['visitors', 'events', 'conversion_rate']

export async function goalRows (state, metrics) {
  const [answers, revenue] = await Promise.all([
    Promise.all(app.goals.map(g => run(state, { endpoint: 'aggregate', params: { metrics: (metrics || GOAL_METRICS).join(','), goal: g } }))),
    goalRevenue(state, app.goals).catch(() => new Map())
  ])
  return answers.map((a, i) => {
    const row = { value: app.goals[i], ...a.metrics }
    const money = revenue.get(app.goals[i])
    if (money && money.length) row.revenue = money
    return row
  }).sort((a, b) => b.visitors - a.visitors)
}
