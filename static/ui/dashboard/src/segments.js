// Segments: a site's saved filter sets (/api/v1/sites/{id}/segments). The filter menu
// lists them (a click applies one's filters, replacing the current ones); owners and
// admins save the current filters as one from the filter row, and delete them (×).

import { app } from './app.js'
import { call } from './api.js'
import { h } from './dom.js'
import { parseState, stateSearch } from './state.js'

const siteId = () => app.root.dataset.site
export const canEdit = () => app.root.dataset.editor === '1'

function filtersQuery (filters) {
  return stateSearch({ period: '30d', filters }).replace(/^\?/, '')
}

export function segmentsMenu (onApply) {
  const box = h('div', { class: 'saved-segments', id: 'segments' })
  const draw = () => {
    box.textContent = ''
    if (!app.segments.length) return
    box.append(h('p', { class: 'menu-title' }, 'Segments'))
    const list = h('ul', { class: 'segment-list' })
    for (const seg of app.segments) {
      list.append(h('li', null,
        h('button', { type: 'button', class: 'segment-apply', onclick: () => { onApply(); app.navigate({ ...app.state, filters: parseState('?' + seg.filters).filters }) } }, seg.name),
        canEdit() ? h('button', { type: 'button', class: 'segment-delete', 'aria-label': 'Delete the segment ' + seg.name, title: 'Delete', onclick: () => remove(seg).then(draw) }, '×') : null))
    }
    box.append(list)
  }
  draw()
  box.redraw = draw
  return box
}

async function remove (seg) {
  try { await call(`/api/v1/sites/${siteId()}/segments/${seg.id}`, { method: 'DELETE' }) } catch (e) { return }
  app.segments = app.segments.filter(s => s.id !== seg.id)
}

// The filter row's "Save as segment": a name, then POST; the menu lists it at once.
export function saveSegmentItem (state, onSaved) {
  const name = h('input', { type: 'text', maxlength: '80', required: true, placeholder: 'Segment name', 'aria-label': 'Segment name' })
  const error = h('span', { class: 'error-note', role: 'alert', hidden: true })
  const form = h('form', {
    class: 'segment-save',
    onsubmit: async e => {
      e.preventDefault()
      let body
      try {
        body = await call(`/api/v1/sites/${siteId()}/segments`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: name.value, filters: filtersQuery(state.filters) })
        })
      } catch (err) { error.textContent = err.message; error.hidden = false; return }
      app.segments = [...app.segments, body.segment].sort((a, b) => a.name.localeCompare(b.name))
      onSaved()
    }
  }, name, h('button', { type: 'submit', class: 'small' }, 'Save'), error)
  const open = h('button', { type: 'button', class: 'link-button', id: 'save-segment', onclick: () => { open.replaceWith(form); name.focus() } }, 'Save as segment')
  return h('li', { class: 'segment-item' }, open)
}
