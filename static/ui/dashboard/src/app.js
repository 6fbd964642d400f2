// The page's shared state: what the URL holds, the site's time zone, goals and funnels, and how a
// control changes them (navigate: a new history entry; replace: the same one), after
// which the page is drawn again. main.js gives it the drawing (onChange); the controls
// and panels only read app.state and navigate, so none of them imports main.js.

import { parseState, stateSearch } from './state.js'

const root = document.getElementById('dashboard')
let state = parseState(location.search)
let draw = () => {}

export const app = {
  get state () { return state },
  tz: root.dataset.timezone,
  goals: JSON.parse(root.dataset.goals || '[]'),
  funnels: JSON.parse(root.dataset.funnels || '[]'),
  segments: JSON.parse(root.dataset.segments || '[]'),
  root,
  navigate (next) {
    state = next
    history.pushState(null, '', location.pathname + stateSearch(next))
    draw()
  },
  replace (next) {
    state = next
    history.replaceState(null, '', location.pathname + stateSearch(next))
    draw()
  },
  onChange (render) { draw = render }
}

window.addEventListener('popstate', () => { state = parseState(location.search); draw() })
