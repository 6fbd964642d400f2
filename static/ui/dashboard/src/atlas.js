// The world map's atlas (world-atlas's 110m countries): esbuild copies it next to the
// bundle under a name with its content hash, so browsers may cache it for good. Fetched
// once, as soon as the map is the visible tab (in parallel with the API requests).

import atlas from 'world-atlas/countries-110m.json'

let pending = null

export function fetchAtlas () {
  if (!pending) {
    pending = fetch(new URL(atlas, import.meta.url)).then(r => {
      if (!r.ok) throw new Error('atlas: HTTP ' + r.status)
      return r.json()
    })
    pending.catch(() => { pending = null })
  }
  return pending
}
