// Every panel of the dashboard, declared once (CONVENTIONS §10): its tabs, the API request
// each tab makes from the page's state, and how a row reads. The page iterates this list;
// the "API" button prints a tab's request back.

import { countryName, flag } from './format.js'
import { filterValue } from './state.js'

const LIST = 9 // rows shown in a panel; "Details" shows them all

const breakdown = (property, metrics, extra) => state => ({
  endpoint: 'breakdown',
  params: { property, metrics: (metrics || ['visitors']).join(','), limit: LIST, ...(extra || {}) }
})

const plain = v => v == null || v === '' ? '(none)' : v
const SESSION = ['visitors', 'visits', 'bounce_rate', 'visit_duration']
const PAGE = ['visitors', 'pageviews', 'bounce_rate', 'time_on_page', 'scroll_depth']
const HIDDEN_EVENTS = new Set(['pageview', 'engagement'])

export const PANELS = [
  {
    id: 'sources',
    title: 'Top sources',
    tabs: [
      { id: 'channels', label: 'Channels', property: 'channel', request: breakdown('channel'), details: SESSION },
      {
        id: 'sources',
        label: 'Sources',
        // Drill-down: with a source filter, the tab lists that source's referrers.
        property: state => filterValue(state, 'source') ? 'referrer' : 'source',
        title: state => filterValue(state, 'source') ? 'Referrers of ' + filterValue(state, 'source') : null,
        request: state => breakdown(filterValue(state, 'source') ? 'referrer' : 'source')(state),
        details: SESSION
      },
      {
        id: 'utm',
        label: 'Campaigns',
        variants: [
          ['utm_medium', 'UTM medium'], ['utm_source', 'UTM source'], ['utm_campaign', 'UTM campaign'],
          ['utm_content', 'UTM content'], ['utm_term', 'UTM term']
        ],
        property: (state, variant) => variant,
        request: (state, variant) => breakdown(variant)(state),
        details: SESSION
      }
    ]
  },
  {
    id: 'pages',
    title: 'Top pages',
    tabs: [
      { id: 'top', label: 'Top pages', short: 'Top', property: 'page', request: breakdown('page', ['visitors', 'pageviews']), details: PAGE },
      { id: 'entry', label: 'Entry pages', short: 'Entry', property: 'entry_page', request: breakdown('entry_page', ['visitors', 'visits']), details: SESSION },
      { id: 'exit', label: 'Exit pages', short: 'Exit', property: 'exit_page', request: breakdown('exit_page', ['visitors', 'visits']), details: ['visitors', 'visits', 'pageviews'] },
      { id: 'outbound', label: 'Outbound links', short: 'Outbound', property: 'exit_link', filterKey: 'prop:url', request: breakdown('exit_link', ['visitors', 'events']), details: ['visitors', 'events'] },
      {
        id: 'downloads',
        label: 'Downloads',
        property: 'prop:url',
        request: breakdown('prop:url', ['visitors', 'events'], { event: 'File Download' }),
        details: ['visitors', 'events']
      }
    ]
  },
  {
    id: 'locations',
    title: 'Locations',
    tabs: [
      { id: 'map', label: 'Map', property: 'country', map: true, request: state => ({ endpoint: 'breakdown', params: { property: 'country', metrics: 'visitors', limit: 300 } }), details: SESSION },
      { id: 'countries', label: 'Countries', property: 'country', request: breakdown('country'), details: SESSION },
      { id: 'regions', label: 'Regions', property: 'region', request: breakdown('region'), details: SESSION },
      { id: 'cities', label: 'Cities', property: 'city', request: breakdown('city'), details: SESSION }
    ]
  },
  {
    id: 'devices',
    title: 'Devices',
    tabs: [
      { id: 'device', label: 'Devices', property: 'device', request: breakdown('device'), details: SESSION },
      {
        id: 'browser',
        label: 'Browsers',
        property: state => filterValue(state, 'browser') ? 'browser_version' : 'browser',
        title: state => filterValue(state, 'browser') ? filterValue(state, 'browser') + ' versions' : null,
        request: state => breakdown(filterValue(state, 'browser') ? 'browser_version' : 'browser')(state),
        details: SESSION
      },
      {
        id: 'os',
        label: 'Operating systems',
        short: 'OS',
        property: state => filterValue(state, 'os') ? 'os_version' : 'os',
        title: state => filterValue(state, 'os') ? filterValue(state, 'os') + ' versions' : null,
        request: state => breakdown(filterValue(state, 'os') ? 'os_version' : 'os')(state),
        details: SESSION
      },
      { id: 'screen', label: 'Screen sizes', short: 'Screens', property: 'screen', request: breakdown('screen'), details: SESSION }
    ]
  },
  {
    id: 'goals',
    title: 'Goals',
    wide: true,
    tabs: [
      { id: 'goals', label: 'Goals', property: 'goal', goals: true, details: ['visitors', 'events', 'conversion_rate'] },
      { id: 'funnels', label: 'Funnels', funnels: true },
      {
        id: 'events',
        label: 'Custom events',
        property: 'event',
        skip: row => HIDDEN_EVENTS.has(row.value),
        request: state => breakdown('event', ['visitors', 'events'], { limit: LIST + 2 })(state),
        details: ['visitors', 'events']
      },
      {
        id: 'props',
        label: 'Properties',
        propKey: true,
        property: (state, variant) => 'prop:' + variant,
        request: (state, variant) => variant ? breakdown('prop:' + variant, ['visitors', 'events'])(state) : null,
        details: ['visitors', 'events']
      }
    ]
  }
]

// How a row's value reads (and its leading glyph).
const DEVICES = { desktop: 'Desktop', mobile: 'Mobile', tablet: 'Tablet' }

// A value as people read it (the API's value stays in data-value and in the filter).
export function displayValue (property, value) {
  if (property === 'device') return DEVICES[value] || plain(value)
  if (property === 'country') return countryName(value)
  return value
}

export function rowLabel (property, value) {
  if (property === 'device') return ['', displayValue(property, value)]
  if (property === 'country') return [flag(value), countryName(value)]
  if (property === 'region' || property === 'city') return ['', plain(value)]
  if (property === 'referrer' || property === 'source') return ['', value || 'Direct / None']
  return ['', plain(value)]
}

export { LIST }
