// The page's state is its URL: period, from/to, compare, interval, metric and filters in
// the native stats API's grammar (`?period=7d&source=Google&page=/blog/*`). A filter key
// ending in "!" is "is not" (`source!=Google`), one ending in "~" is "contains".

export const FILTER_KEYS = [
  'page', 'entry_page', 'exit_page', 'hostname', 'source', 'referrer', 'channel',
  'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term',
  'country', 'region', 'city', 'device', 'browser', 'browser_version', 'os', 'os_version',
  'screen', 'event', 'goal'
]

export const FILTER_LABELS = {
  page: 'Page', entry_page: 'Entry page', exit_page: 'Exit page', hostname: 'Hostname',
  source: 'Source', referrer: 'Referrer', channel: 'Channel', utm_source: 'UTM source',
  utm_medium: 'UTM medium', utm_campaign: 'UTM campaign', utm_content: 'UTM content',
  utm_term: 'UTM term', country: 'Country', region: 'Region', city: 'City', device: 'Device',
  browser: 'Browser', browser_version: 'Browser version', os: 'Operating system',
  os_version: 'OS version', screen: 'Screen size', event: 'Event', goal: 'Goal'
}

export const OPS = { is: 'is', is_not: 'is not', contains: 'contains' }
const SUFFIX = { is: '', is_not: '!', contains: '~' }

export const PERIODS = [
  // [value, label, shortcut]
  ['today', 'Today', 'd'], ['yesterday', 'Yesterday', 'e'], ['realtime', 'Realtime', 'r'],
  ['24h', 'Last 24 hours', 'h'], ['7d', 'Last 7 days', 'w'], ['30d', 'Last 30 days', 't'],
  ['90d', 'Last 90 days', 'n'], ['wtd', 'Week to date', ''], ['mtd', 'Month to date', 'm'],
  ['month', 'Last month', 'p'], ['ytd', 'Year to date', 'y'], ['12m', 'Last 12 months', 'l'],
  ['all', 'All time', 'a']
]
export const DEFAULT_PERIOD = '30d'
const INTERVALS = ['hour', 'day', 'week', 'month']

export function isFilterKey (key) {
  return FILTER_KEYS.includes(key) || (key.startsWith('prop:') && key.length > 5)
}

export function filterLabel (key) {
  return FILTER_LABELS[key] || (key.startsWith('prop:') ? 'Property ' + key.slice(5) : key)
}

export function parseState (search) {
  const q = new URLSearchParams(search)
  const state = {
    period: q.get('period') || DEFAULT_PERIOD,
    from: q.get('from') || null,
    to: q.get('to') || null,
    compare: q.get('compare') || null,
    interval: INTERVALS.includes(q.get('interval')) ? q.get('interval') : null,
    metric: q.get('metric') || 'visitors',
    // with_imported=true: add the site's imported aggregates where they can answer.
    imported: q.get('with_imported') === 'true',
    filters: []
  }
  if (state.period === 'custom' && !(state.from && state.to)) state.period = DEFAULT_PERIOD
  if (state.period !== 'custom') { state.from = null; state.to = null }
  for (const [name, value] of q) {
    let key = name
    let op = 'is'
    if (key.endsWith('!')) { op = 'is_not'; key = key.slice(0, -1) }
    else if (key.endsWith('~')) { op = 'contains'; key = key.slice(0, -1) }
    if (!isFilterKey(key)) continue
    const values = value.split('|').filter(Boolean)
    if (values.length) state.filters.push({ key, op, values })
  }
  return state
}

export function stateSearch (state) {
  const q = new URLSearchParams()
  if (state.period !== DEFAULT_PERIOD) q.set('period', state.period)
  if (state.period === 'custom') { q.set('from', state.from); q.set('to', state.to) }
  if (state.compare) q.set('compare', state.compare)
  if (state.interval) q.set('interval', state.interval)
  if (state.metric && state.metric !== 'visitors') q.set('metric', state.metric)
  if (state.imported) q.set('with_imported', 'true')
  for (const f of state.filters) q.append(f.key + SUFFIX[f.op], f.values.join('|'))
  // Keep the URL readable: "/" and ":" need no escaping in a query string.
  const text = q.toString().replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%2A/g, '*').replace(/%7C/g, '|')
    .replace(/%21=/g, '!=').replace(/%7E=/g, '~=')
  return text ? '?' + text : ''
}

export function withFilter (state, filter) {
  const filters = state.filters.filter(f => !(f.key === filter.key && f.op === filter.op))
  return { ...state, filters: [...filters, filter] }
}

export function withoutFilter (state, index) {
  return { ...state, filters: state.filters.filter((_, i) => i !== index) }
}

export function hasFilter (state, key) {
  return state.filters.some(f => f.key === key && f.op === 'is')
}

export function filterValue (state, key) {
  const f = state.filters.find(f => f.key === key && f.op === 'is' && f.values.length === 1)
  return f ? f.values[0] : null
}
