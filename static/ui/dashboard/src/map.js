// The world map (loaded only when the Map tab is shown): world-atlas's 110m countries,
// projected at build time (scripts/map-shapes.mjs), shaded by visitors. A country is a
// button-like path: a click (or Enter) filters by it; hover or focus shows its figure.

import numeric from './iso-numeric.js'
import { countryName, exact } from './format.js'
import shapes, { WIDTH, HEIGHT } from './countries.gen.js'

const NS = 'http://www.w3.org/2000/svg'

export function drawMap (body, rows, onPick) {
  body.textContent = ''
  const byCode = new Map(rows.map(r => [r.value, r.visitors]))
  const max = Math.max(1, ...rows.map(r => r.visitors))
  const svg = document.createElementNS(NS, 'svg')
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`)
  svg.setAttribute('class', 'map')
  svg.setAttribute('role', 'group')
  svg.setAttribute('aria-label', 'Visitors by country')
  const tip = document.createElement('div')
  tip.className = 'map-tip'
  tip.hidden = true
  for (const [id, d] of shapes) {
    const code = numeric[id]
    const visitors = code ? byCode.get(code) || 0 : 0
    const p = document.createElementNS(NS, 'path')
    p.setAttribute('d', d)
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
