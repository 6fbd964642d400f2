// Revenue per currency, never summed across currencies: the native breakdown by
// `property=currency` (one row per ISO code; events without revenue have none). Plausible's
// v2 has no such dimension, so a view that needs v2 (an "is not" filter, realtime) shows
// no revenue rather than a wrong one.

import { run, needsV2 } from './api.js'

export function revenueRequest (extra) {
  return { endpoint: 'breakdown', params: { property: 'currency', metrics: 'revenue,events', limit: 50, ...(extra || {}) } }
}

// [{currency, amount}] with revenue, largest first; null when the view can't ask.
export async function revenueByCurrency (state, extra) {
  const req = revenueRequest(extra)
  if (needsV2(state, req)) return null
  const body = await run(state, req)
  return body.results.filter(r => r.value && r.revenue).map(r => ({ currency: r.value, amount: r.revenue }))
}

// goal name -> [{currency, amount}]: one request for the whole scope first, and one per
// goal only when the scope has any revenue at all (most sites have none).
export async function goalRevenue (state, goals) {
  const any = await revenueByCurrency(state)
  if (!any || !any.length) return new Map()
  const each = await Promise.all(goals.map(g => revenueByCurrency(state, { goal: g })))
  return new Map(goals.map((g, i) => [g, each[i] || []]))
}
