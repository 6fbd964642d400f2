// Numbers as people read them; the exact API value stays in data- attributes and titles.

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 })
const whole = new Intl.NumberFormat('en')

export function number (n) {
  if (n == null) return '—'
  return Math.abs(n) < 10000 ? whole.format(n) : compact.format(n)
}

export function exact (n) { return n == null ? '—' : whole.format(n) }

export function duration (seconds) {
  if (seconds == null) return '—'
  const s = Math.round(seconds)
  if (s < 60) return s + 's'
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (h) return h + 'h ' + m + 'm'
  return m + 'm ' + (s % 60) + 's'
}

export function percent (n) { return n == null ? '—' : (Math.round(n * 10) / 10) + '%' }

export const METRICS = {
  visitors: { label: 'Unique visitors', short: 'Visitors', fmt: number },
  visits: { label: 'Total visits', short: 'Visits', fmt: number },
  pageviews: { label: 'Total pageviews', short: 'Pageviews', fmt: number },
  views_per_visit: { label: 'Views per visit', short: 'Views / visit', fmt: n => n == null ? '—' : String(n) },
  bounce_rate: { label: 'Bounce rate', short: 'Bounce rate', fmt: percent, lowerIsBetter: true },
  visit_duration: { label: 'Visit duration', short: 'Duration', fmt: duration },
  events: { label: 'Total conversions', short: 'Events', fmt: number },
  conversion_rate: { label: 'Conversion rate', short: 'CR', fmt: percent },
  time_on_page: { label: 'Time on page', short: 'Time on page', fmt: duration },
  scroll_depth: { label: 'Scroll depth', short: 'Scroll depth', fmt: percent },
  entries: { label: 'Entrances', short: 'Entrances', fmt: number },
  exits: { label: 'Exits', short: 'Exits', fmt: number },
  clicks: { label: 'Clicks', short: 'Clicks', fmt: number },
  revenue: { label: 'Revenue', short: 'Revenue', fmt: v => moneyList(v) }
}

const moneyFormats = new Map()
export function money (amount, currency) {
  if (!moneyFormats.has(currency)) {
    try {
      moneyFormats.set(currency, new Intl.NumberFormat('en', { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 2 }))
    } catch (e) { moneyFormats.set(currency, null) }
  }
  const f = moneyFormats.get(currency)
  return f ? f.format(amount) : amount.toFixed(2) + ' ' + currency
}

// [{currency, amount}] -> "€120.00 · $40.00": each currency on its own, never a sum.
export function moneyList (list) {
  if (!list || !list.length) return '—'
  return list.map(r => money(r.amount, r.currency)).join(' · ')
}

export function metricFmt (m, v) { return (METRICS[m] ? METRICS[m].fmt : number)(v) }
export function metricLabel (m) { return METRICS[m] ? METRICS[m].short : m }

let regions = null
export function countryName (code) {
  if (!code) return 'Unknown'
  try {
    regions = regions || new Intl.DisplayNames(['en'], { type: 'region' })
    return regions.of(code) || code
  } catch (e) { return code }
}

export function flag (code) {
  if (!code || !/^[A-Z]{2}$/.test(code)) return ''
  return String.fromCodePoint(...[...code].map(c => 0x1F1E6 + c.charCodeAt(0) - 65))
}
