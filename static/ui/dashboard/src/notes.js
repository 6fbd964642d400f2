// Annotations: the site's dated notes (GET /api/v1/stats/annotations), marked on the graph
// (graph.js draws a line at each note's bucket) and listed under it; owners and admins add
// and delete them (POST / DELETE /api/v1/sites/{id}/annotations). Not on share links.

import { app } from './app.js'
import { call, nativeUrl } from './api.js'
import { h } from './dom.js'
import { shortDay, siteToday } from './dates.js'

const siteId = () => app.root.dataset.site
const editable = () => app.root.dataset.editor === '1'

export function loadNotes (state) {
  if (app.root.dataset.share || state.period === 'realtime') return Promise.resolve([])
  return call(nativeUrl({ ...state, filters: [], imported: false }, { endpoint: 'annotations', params: {} }))
    .then(body => body.results)
    .catch(() => [])
}

// index of each bucket -> its notes: a note belongs to the bucket its day falls in.
export function notesByBucket (labels, interval, notes) {
  const out = new Map()
  for (const note of notes) {
    let at = -1
    if (interval === 'hour' || interval === 'minute') at = labels.findIndex(l => l.slice(0, 10) === note.date)
    else for (let i = 0; i < labels.length; i++) if (labels[i].slice(0, 10) <= note.date) at = i
    if (at < 0) continue
    if (!out.has(at)) out.set(at, [])
    out.get(at).push(note)
  }
  return out
}

export function drawNotes (notes) {
  let box = document.getElementById('notes')
  if (!box) {
    box = h('div', { id: 'notes', class: 'notes' })
    document.getElementById('graph').after(box)
  }
  box.textContent = ''
  if (notes.length) {
    const list = h('ul', { class: 'note-list', 'aria-label': 'Annotations' })
    for (const note of notes) {
      list.append(h('li', { dataset: { date: note.date } },
        h('span', { class: 'note-date' }, shortDay(note.date, true)), ' ', h('span', { class: 'note-text' }, note.text),
        editable() ? h('button', { type: 'button', class: 'note-delete', 'aria-label': 'Delete the note ' + note.text, title: 'Delete', onclick: () => remove(note) }, '×') : null))
    }
    box.append(list)
  }
  if (editable()) box.append(addForm())
}

function addForm () {
  const date = h('input', { type: 'date', name: 'date', value: siteToday(app.tz), required: true, 'aria-label': 'Day of the note' })
  const text = h('input', { type: 'text', name: 'text', maxlength: '200', placeholder: 'e.g. Launched the new pricing page', required: true, 'aria-label': 'Note' })
  const error = h('p', { class: 'error-note', hidden: true, role: 'alert' })
  const form = h('form', {
    class: 'note-form',
    onsubmit: async e => {
      e.preventDefault()
      try {
        await call(`/api/v1/sites/${siteId()}/annotations`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ date: date.value, text: text.value })
        })
      } catch (err) { error.textContent = err.message; error.hidden = false; return }
      app.replace(app.state)
    }
  }, date, text, h('button', { type: 'submit', class: 'small' }, 'Add note'), error)
  return h('details', { class: 'note-add' }, h('summary', null, 'Add a note'), form)
}

async function remove (note) {
  try { await call(`/api/v1/sites/${siteId()}/annotations/${note.id}`, { method: 'DELETE' }) } catch (e) { return }
  app.replace(app.state)
}
