// The world map (loaded only when the Map tab is shown): d3-geo + topojson-client over
// world-atlas's 110m countries, shaded by visitors. A country is a button-like path: a
// click (or Enter) filters by it; hover or focus shows its figure.

import { geoEqualEarth, geoPath } from 'd3-geo'
import { feature } from 'topojson-client'
import numeric from './iso-numeric.js'
import { countryName, exact } from './format.js'

let atlas = null
const NS = 'http://www.w3.org/2000/svg'

async function loadAtlas () {
  if (!atlas) atlas = fetch(new URL('./countries-110m.json', import.meta.url)).then(r => r.json())
  return atlas
}

export async function drawMap (body, rows, onPick) {
  body.textContent = ''
  const world = await loadAtlas()
  const land = feature(world, world.objects.countries)
  const byCode = new Map(rows.map(r => [r.value, r.visitors]))
  const max = Math.max(1, ...rows.map(r => r.visitors))
  const width = 640
  const height = 330
  const projection = geoEqualEarth().fitExtent([[4, 4], [width - 4, height - 4]], { type: 'Sphere' })
  const path = geoPath(projection)
  const svg = document.createElementNS(NS, 'svg')
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('class', 'map')
  svg.setAttribute('role', 'group')
  svg.setAttribute('aria-label', 'Visitors by country')
  const tip = document.createElement('div')
  tip.className = 'map-tip'
  tip.hidden = true
  for (const f of land.features) {
    if (f.properties.name === 'Antarctica') continue
    const code = numeric[Number(f.id)]
    const visitors = code ? byCode.get(code) || 0 : 0
    const p = document.createElementNS(NS, 'path')
    p.setAttribute('d', path(f))
    p.setAttribute('class', 'country' + (visitors ? ' has' : ''))
    if (visitors) {
      // Square root: a few big countries should not wash out the rest.
      p.style.fillOpacity = String(0.18 + 0.82 * Math.sqrt(visitors / max))
      p.setAttribute('tabindex', '0')
      p.setAttribute('role', 'button')
      const name = countryName(code)
      p.setAttribute('aria-label', `${name}: ${exact(visitors)} visitors`)
      p.dataset.country = code
      const show = () => { tip.textContent = `${name} · ${exact(visitors)} visitors`; tip.hidden = false }
      p.addEventListener('mouseenter', show)
      p.addEventListener('focus', show)
      p.addEventListener('mouseleave', () => { tip.hidden = true })
      p.addEventListener('blur', () => { tip.hidden = true })
      p.addEventListener('click', () => onPick(code))
      p.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onPick(code) } })
    }
    svg.append(p)
  }
  body.append(svg, tip)
}
