// Days as 'YYYY-MM-DD' strings in the site's time zone (never the browser's).

const pad = n => String(n).padStart(2, '0')
const iso = d => d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate())
const parse = day => new Date(day + 'T00:00:00Z')

export function siteToday (tz, now) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(now || new Date())
  const get = t => parts.find(p => p.type === t).value
  return get('year') + '-' + get('month') + '-' + get('day')
}

// A UTC instant as the site's local 'YYYY-MM-DD HH:MM'.
export function siteLocal (tz, instant) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'
  }).formatToParts(new Date(instant))
  const get = t => parts.find(p => p.type === t).value
  return get('year') + '-' + get('month') + '-' + get('day') + ' ' + get('hour') + ':' + get('minute')
}

export function dayAdd (day, n) {
  const d = parse(day)
  d.setUTCDate(d.getUTCDate() + n)
  return iso(d)
}

export function monthAdd (day, n) {
  const d = parse(day)
  const want = d.getUTCDate()
  d.setUTCDate(1)
  d.setUTCMonth(d.getUTCMonth() + n)
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()
  d.setUTCDate(Math.min(want, last))
  return iso(d)
}

export const weekday = day => (parse(day).getUTCDay() + 6) % 7 // Monday 0
export const daysBetween = (a, b) => Math.round((parse(b) - parse(a)) / 864e5)

// The days a period covers, as app/query/periods.py resolves them.
export function periodDays (state, today) {
  switch (state.period) {
    case 'custom': return [state.from, state.to]
    case 'today': case 'realtime': return [today, today]
    case 'yesterday': return [dayAdd(today, -1), dayAdd(today, -1)]
    case '24h': return [dayAdd(today, -1), today]
    case '7d': return [dayAdd(today, -6), today]
    case '30d': return [dayAdd(today, -29), today]
    case '90d': return [dayAdd(today, -89), today]
    case '12m': case '1y': return [dayAdd(today, -364), today]
    case 'wtd': return [dayAdd(today, -weekday(today)), today]
    case 'mtd': return [today.slice(0, 8) + '01', today]
    case 'ytd': return [today.slice(0, 5) + '01-01', today]
    case 'month': {
      const first = monthAdd(today.slice(0, 8) + '01', -1)
      return [first, dayAdd(today.slice(0, 8) + '01', -1)]
    }
    default: return [today, today]
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
export const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

export function shortDay (day, withYear) {
  const [y, m, d] = day.split('-')
  return Number(d) + ' ' + MONTHS[Number(m) - 1] + (withYear ? ' ' + y : '')
}

export function monthLabel (day) {
  const [y, m] = day.split('-')
  return MONTHS[Number(m) - 1] + ' ' + y
}

export function rangeLabel (from, to, today) {
  const sameYear = from.slice(0, 4) === to.slice(0, 4) && to.slice(0, 4) === today.slice(0, 4)
  if (from === to) return shortDay(from, !sameYear)
  return shortDay(from, !sameYear) + ' – ' + shortDay(to, !sameYear)
}

// ←/→: the same-sized range before or after (a month steps by calendar months).
export function stepRange (state, today, dir) {
  const [from, to] = periodDays(state, today)
  if (state.period === 'month' || state.period === 'mtd' ||
      (state.period === 'custom' && from.endsWith('-01') && dayAdd(to, 1).endsWith('-01'))) {
    const first = monthAdd(from.slice(0, 8) + '01', dir)
    const last = dayAdd(monthAdd(first, 1), -1)
    return [first, last > today ? today : last]
  }
  const length = daysBetween(from, to) + 1
  let nf = dayAdd(from, dir * length)
  let nt = dayAdd(to, dir * length)
  if (nt > today) { nt = today; nf = dayAdd(today, -(length - 1)) }
  return [nf, nt]
}
