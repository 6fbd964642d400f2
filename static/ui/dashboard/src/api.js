// The public stats API, as the dashboard (or any script) calls it. A request is
// {endpoint, params} in the native API's names; it runs as a native GET unless the page's
// state needs what only Plausible's v2 grammar says (an "is not" filter, the last 30
// minutes, regions or cities without a country), then as POST /api/v2/query, and the
// answer is brought to the native shape. Both forms are printable for the "API" button.

import { dayAdd, monthAdd, periodDays, siteToday } from './dates.js'

let root = null
export function configure (el) { root = el }
const site = () => ({ id: root.dataset.site, domain: root.dataset.domain, tz: root.dataset.timezone })

const V2_METRICS = { revenue: 'total_revenue' }
const EVENT_DIMS = { page: 'event:page', event: 'event:name', hostname: 'event:hostname', goal: 'event:goal' }
const OUTBOUND = 'Outbound Link: Click'

function dim (key) {
  if (EVENT_DIMS[key]) return EVENT_DIMS[key]
  if (key.startsWith('prop:')) return 'event:props:' + key.slice(5)
  return 'visit:' + key
}

function periodParams (state) {
  if (state.period === 'custom') return { period: 'custom', from: state.from, to: state.to }
  return { period: state.period }
}

function filterParams (filters) {
  const out = {}
  for (const f of filters) {
    if (f.op === 'is') out[f.key] = f.values.join('|')
    else if (f.op === 'contains') out[f.key] = f.values.map(v => '*' + v + '*').join('|')
  }
  return out
}

export function needsV2 (state, req) {
  if (req.endpoint === 'realtime') return false
  if (state.period === 'realtime') return true
  if (state.filters.some(f => f.op === 'is_not')) return true
  const p = req.params.property
  return (p === 'region' || p === 'city') && !state.filters.some(f => f.key === 'country' && f.op === 'is')
}

// The native query string, in a stable order (site, period, filters, the rest).
export function nativeQuery (state, req) {
  const q = new URLSearchParams({ site_id: site().id })
  if (req.endpoint !== 'realtime') {
    for (const [k, v] of Object.entries(periodParams(state))) q.set(k, v)
    for (const [k, v] of Object.entries(filterParams(state.filters))) q.set(k, v)
  }
  for (const [k, v] of Object.entries(req.params)) if (v != null) q.set(k, v)
  if (state.imported && req.endpoint !== 'realtime') q.set('with_imported', 'true')
  return q.toString().replace(/%2C/g, ',').replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%7C/g, '|').replace(/%2A/g, '*')
}

export function nativeUrl (state, req) {
  return '/api/v1/stats/' + req.endpoint + '?' + nativeQuery(state, req)
}

function wildcardRegex (value) {
  return '^' + value.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'
}

// v2 answers and filters with Plausible's labels (app/query/plausible_labels.py): "Desktop",
// "Mac", "Direct / None", "(not set)", "(none)"; the page keeps the native values.
const SCREENS = { desktop: 'Desktop', laptop: 'Laptop', tablet: 'Tablet', mobile: 'Mobile' }
const RENAMED = { device: SCREENS, screen: SCREENS, os: { macOS: 'Mac', Linux: 'GNU/Linux', ChromeOS: 'Chrome OS' } }
const toLabel = (key, v) => (RENAMED[key] && RENAMED[key][v]) || v

export function fromLabel (key, v) {
  if (key.startsWith('prop:')) return v === '(none)' ? null : v
  if (v === '(not set)' || (v === 'Direct / None' && (key === 'source' || key === 'referrer' || key.startsWith('utm_')))) return null
  const found = Object.entries(RENAMED[key] || {}).find(([, label]) => label === v)
  return found ? found[0] : v
}

function v2Filters (filters) {
  const out = []
  for (const f of filters) {
    const d = dim(f.key)
    const neg = f.op === 'is_not'
    if (f.op === 'contains') out.push(['contains', d, f.values])
    else if (f.key === 'goal' && !neg) out.push(['is', d, f.values])
    else if (f.values.some(v => v.includes('*'))) out.push([neg ? 'matches_not' : 'matches', d, f.values.map(wildcardRegex)])
    else out.push([neg ? 'is_not' : 'is', d, f.values.map(v => toLabel(f.key, v))])
  }
  return out
}

function isoMinute (ms) {
  return new Date(ms).toISOString().slice(0, 19) + 'Z'
}

export function v2DateRange (state, shift) {
  if (state.period === 'realtime') {
    const now = Date.now()
    return [isoMinute(now - 30 * 60e3), isoMinute(now)]
  }
  if (state.period === 'all' && !shift) return 'all'
  if (state.period === '24h' && !shift) return '24h'
  const [from, to] = periodDays(state, siteToday(site().tz))
  if (!shift) return [from, to]
  return shift === 'year_over_year' ? [yearBack(from), yearBack(to)] : previousDays(from, to)
}

function yearBack (day) {
  const d = monthAdd(day, -12)
  return d
}

function previousDays (from, to) {
  const length = (Date.parse(to) - Date.parse(from)) / 864e5 + 1
  return [dayAdd(from, -length), dayAdd(to, -length)]
}

// The asked metrics that Plausible's v2 answers in this context (the rest show as no value):
// it refuses views_per_visit under a page filter, and event metrics (pageviews, events)
// broken down by a visit's entry or exit page (query_validations_test.exs).
function v2Metrics (state, req) {
  const p = req.params
  const paged = state.filters.some(f => f.key === 'page') || 'page' in p
  const visitDim = req.endpoint === 'breakdown' && (p.property === 'entry_page' || p.property === 'exit_page')
  return (p.metrics || 'visitors').split(',').filter(m =>
    !(m === 'views_per_visit' && paged) && !(visitDim && (m === 'pageviews' || m === 'events')))
}

// The Plausible v2 body of a request (shift: the comparison period's body).
export function v2Body (state, req, shift) {
  const p = req.params
  // A breakdown's conversion rate is each row's group's (the native API's): v2's
  // group_conversion_rate; v2's conversion_rate is against all visitors.
  const rename = m => req.endpoint === 'breakdown' && m === 'conversion_rate' ? 'group_conversion_rate' : (V2_METRICS[m] || m)
  const metrics = v2Metrics(state, req).map(rename)
  const filters = v2Filters(state.filters)
  for (const [k, v] of Object.entries(p)) {
    if (k === 'event' || k === 'goal') filters.push(['is', dim(k), v.split('|')])
  }
  const body = { site_id: site().domain, metrics, date_range: v2DateRange(state, shift) }
  if (req.endpoint === 'breakdown') {
    if (p.property === 'exit_link') {
      body.dimensions = ['event:props:url']
      filters.push(['is', 'event:name', [OUTBOUND]])
    } else {
      body.dimensions = [dim(p.property)]
    }
  }
  if (req.endpoint === 'timeseries') body.dimensions = ['time:' + (p.interval || 'day')]
  if (filters.length) body.filters = filters
  if (req.endpoint === 'breakdown') {
    if (p.sort) { const [m, d] = p.sort.split('.'); body.order_by = [[rename(m), d]] }
    const limit = Number(p.limit || 100)
    body.pagination = { limit, offset: (Number(p.page_number || 1) - 1) * limit }
    body.include = { total_rows: true }
  }
  if (req.endpoint === 'timeseries') body.include = { time_labels: true }
  if (state.imported) body.include = { ...body.include, imports: true }
  return body
}

export class ApiError extends Error {}

export async function call (url, init) {
  const headers = { Accept: 'application/json', ...(init && init.headers) }
  if (root.dataset.token) headers.Authorization = 'Bearer ' + root.dataset.token
  // A POST (/api/v2/query, a note) or DELETE with the session cookie echoes its CSRF token.
  else if (root.dataset.csrf && init && init.method && init.method !== 'GET') headers['X-CSRF-Token'] = root.dataset.csrf
  const res = await fetch(url, { credentials: 'same-origin', ...init, headers })
  let body = null
  try { body = await res.json() } catch (e) { body = null }
  if (!res.ok) {
    const msg = (body && (body.error && (body.error.message || body.error))) || res.statusText
    throw new ApiError(typeof msg === 'string' ? msg : 'HTTP ' + res.status)
  }
  return body
}

function postV2 (body) {
  return call('/api/v2/query', {
    method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' }
  })
}

// Run a request; the answer has the native endpoint's shape.
export async function run (state, req, signal) {
  if (!needsV2(state, req)) return call(nativeUrl(state, req), { signal })
  const metrics = (req.params.metrics || 'visitors').split(',')
  const answered = v2Metrics(state, req)
  const shift = req.params.compare
  const [main, other] = await Promise.all([
    postV2(v2Body(state, req)),
    shift && state.period !== 'realtime' ? postV2(v2Body(state, req, shift)) : null
  ])
  const pick = r => Object.fromEntries(metrics.map(m => {
    const i = answered.indexOf(m)
    return [m, i < 0 ? null : r.metrics[i]]
  }))
  if (req.endpoint === 'aggregate') {
    const values = main.results.length ? pick(main.results[0]) : Object.fromEntries(metrics.map(m => [m, 0]))
    const out = { metrics: values, meta: main.meta }
    if (other) {
      const prev = other.results.length ? pick(other.results[0]) : Object.fromEntries(metrics.map(m => [m, 0]))
      out.comparison = { metrics: prev }
      out.change = Object.fromEntries(metrics.map(m => [m, change(m, values[m], prev[m])]))
    }
    return out
  }
  if (req.endpoint === 'breakdown') {
    return {
      results: main.results.map(r => ({ value: fromLabel(req.params.property, r.dimensions[0]), ...pick(r) })),
      pagination: { total_rows: main.meta.total_rows }
    }
  }
  const series = r => {
    const found = new Map(r.results.map(x => [x.dimensions[0], pick(x)]))
    const zero = Object.fromEntries(metrics.map(m => [m, 0]))
    return r.meta.time_labels.map(label => ({ label, ...(found.get(label) || zero) }))
  }
  const out = { results: series(main), interval: req.params.interval, meta: main.meta }
  if (other) out.comparison = { results: series(other) }
  return out
}

// As the API computes it (app/query/render.py): percent, bounce rate in points.
export function change (metric, current, previous) {
  if (current == null || previous == null) return null
  if (metric === 'bounce_rate') return Math.round((current - previous) * 10) / 10
  if (previous === 0) return current === 0 ? 0 : 100
  return Math.round((current - previous) / previous * 1000) / 10
}

export function realtimeVisitors (minutes) {
  return call(nativeUrl({ filters: [] }, { endpoint: 'realtime', params: { minutes } }))
}

// The request as a person would script it: native GET + curl, and the v2 body + curl.
export function describe (state, req) {
  const origin = location.origin
  const auth = root.dataset.token ? 'Bearer ' + root.dataset.token : 'Bearer $AVOCET_KEY'
  const url = origin + nativeUrl(state, req)
  const body = v2Body(state, req)
  return {
    native: nativeUrl(state, req),
    nativeCurl: `curl -H "Authorization: ${auth}" \\\n  '${url.replace(/'/g, "'\\''")}'`,
    v2: JSON.stringify(body, null, 2),
    v2Curl: `curl -X POST -H "Authorization: ${auth}" \\\n  -H 'Content-Type: application/json' \\\n  ${origin}/api/v2/query -d '${JSON.stringify(body).replace(/'/g, "'\\''")}'`,
    usesV2: needsV2(state, req)
  }
}
