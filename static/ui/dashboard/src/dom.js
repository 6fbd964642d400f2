// A tiny element builder: text always goes in as text (textContent), never as markup.

export function h (tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'style') Object.assign(el.style, v)
    else el.setAttribute(k, v === true ? '' : v)
  }
  append(el, children)
  return el
}

function append (el, children) {
  for (const c of children) {
    if (c == null || c === false) continue
    if (Array.isArray(c)) append(el, c)
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

export function svgIcon (path, label) {
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  svg.setAttribute('viewBox', '0 0 20 20')
  svg.setAttribute('class', 'icon')
  svg.setAttribute('aria-hidden', 'true')
  const p = document.createElementNS(ns, 'path')
  p.setAttribute('d', path)
  svg.append(p)
  return label ? [svg, h('span', { class: 'visually-hidden' }, label)] : svg
}

export const ICONS = {
  chevron: 'M5.5 7.5 10 12l4.5-4.5',
  left: 'M12.5 5 7.5 10l5 5',
  right: 'M7.5 5l5 5-5 5',
  close: 'M5 5l10 10M15 5 5 15',
  filter: 'M3 5h14M6 10h8M9 15h2',
  expand: 'M4 8V4h4M16 8V4h-4M4 12v4h4M16 12v4h-4',
  code: 'M7 6 3 10l4 4M13 6l4 4-4 4',
  download: 'M10 3v10M6 9l4 4 4-4M4 16h12'
}
