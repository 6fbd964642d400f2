/*
 * Avocet tracker: the readable source of static/script.js (built by scripts/build-tracker).
 *
 *   <script defer data-site="SITE_ID" src="https://host/script.js"></script>
 *
 * Attributes on the script tag:
 *   data-site | data-tracking-code   site id (Avocet / Zenovay snippets), sent as `s`
 *   data-domain                      site domain (Plausible snippets), sent as `d`
 *   data-api                         collect URL, for proxying through the site's own domain
 *                                    (default: <origin of src>/collect)
 *   data-hash                        hash-based routing: the fragment is part of the page
 *   data-404                         also send a `404` event after the pageview
 *   data-file-types                  comma list replacing the default download extensions
 *   data-allow-local                 track on localhost / 127.x / file:
 *   data-allow-webdriver             track when navigator.webdriver is set (browser tests)
 *
 * Globals: avocet(name, {props, revenue, interactive, callback, u}), plausible(...) (same),
 * zenovay('track', name, props); calls queued in `.q` before this script loads are replayed.
 *
 * Events: pageview (when the page is first visible, and on each SPA route: a new pathname, or
 * hash in hash mode), engagement (time + scroll, when the page hides or the route changes),
 * 'File Download' and 'Outbound Link: Click' ({url}), tagged elements (class
 * "avocet-event-name=Signup" or Plausible's plausible-event-*), and '404' with data-404.
 *
 * Privacy: no cookie. localStorage holds only the opt-out flag (avocet_ignore /
 * plausible_ignore = "true"), read on every page and written on one request alone: a page
 * opened with #avocet_ignore=true (or =false to undo), the link the settings page gives the
 * site's owner.
 *
 * Size matters (a test holds the gzipped build to 1,500 B): one send function, no classes,
 * `let` throughout (shorter than const once minified), and esbuild --minify renames the
 * locals inside the IIFE.
 */
;(() => {
  let doc = document
  let loc = location
  let script = doc.currentScript
  let attr = (name) => script.getAttribute('data-' + name)
  let has = (name) => script.hasAttribute('data-' + name)
  let on = (target, type, fn) => target.addEventListener(type, fn)
  let now = Date.now

  // A missing one is sent as null (the server reads null as absent).
  let site = attr('site') || attr('tracking-code')
  let domain = attr('domain')
  let hashMode = has('hash')
  // A relative data-api ("/stats/collect") resolves against the page, which is the point.
  let endpoint = attr('api') || new URL('/collect', script.src)
  let fileTypes = (
    attr('file-types') ||
    'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg'
  ).split(',')

  // Decided once: a developer's machine or an automated browser never counts, unless the tag
  // says so (the browser tests use data-allow-local + data-allow-webdriver). `off` is the
  // reason, which every ignored event prints to the console, as Plausible's script does:
  // whoever tests a page and sees nothing arrive looks there first. (The README and the
  // install page name the attribute that allows it; the size budget has no room for that.)
  let off =
    (/^(localhost|127\.|\[::1|$)/.test(loc.hostname) && // an empty hostname: file:, about:
      !has('allow-local') &&
      'local page') ||
    (navigator.webdriver && !has('allow-webdriver') && 'webdriver')
  // The visitor's own opt-out (read once, like the cookie-less Plausible script; reload after
  // setting it), set by the owner's one-click link. localStorage throws in some sandboxed
  // frames: then not opted out.
  try {
    loc.hash.replace(/avocet_ignore=(\w+)/, (match, value) => (localStorage.avocet_ignore = value))
    off =
      off ||
      ((localStorage.avocet_ignore == 'true' || localStorage.plausible_ignore == 'true') &&
        'localStorage opt-out')
  } catch (e) {}

  // The one way out, for every event. opts: props, revenue, interactive, callback (the public
  // API), u (another URL, as Plausible's manual option), e + sd (engagement).
  // A string body makes fetch send Content-Type text/plain, a "simple" CORS request: no
  // preflight. keepalive lets the request outlive the page (link clicks, tab close), so the
  // tracker never has to delay a navigation. No fetch, or it throws: sendBeacon.
  let send = (name, opts = {}) => {
    let callback = opts.callback || now // no callback: a harmless call of Date.now
    if (off) return console.warn('Avocet ignores ' + name + ': ' + off), callback()
    // opts go as they are (props, revenue, interactive: the server's long names; e, sd;
    // JSON leaves the callback out), under what the tracker knows.
    let body = JSON.stringify(
      Object.assign({}, opts, {
        n: name,
        u: opts.u || loc.href,
        s: site,
        d: domain,
        r: doc.referrer, // '' when none, which the server reads as none
        w: innerWidth,
        h: hashMode,
      }),
    )
    try {
      fetch(endpoint, { method: 'POST', body, keepalive: true }).then(callback, callback)
    } catch (e) {
      navigator.sendBeacon(endpoint, body)
      callback()
    }
  }

  /* Engagement: time visible + focused, and the deepest point scrolled, per pageview. */

  let pageUrl // u of the current pageview; its engagement events repeat it
  let lastPage // pathname (+ hash in hash mode) of the last pageview: SPA de-duplication
  let engagedMs // engaged time banked for the current pageview
  let runningSince // start of the current visible + focused stretch; 0 = paused
  let maxBottom // deepest viewport bottom seen, in px
  let sentDepth // scroll depth of the last engagement event sent for this pageview

  // The scrolling element is <html>, or <body> in quirks mode; its clientHeight is the
  // viewport without scrollbars, so bottom() never exceeds scrollHeight (depth stays <= 100).
  let bottom = (el = doc.scrollingElement) => el.scrollTop + el.clientHeight
  on(doc, 'scroll', () => {
    maxBottom = Math.max(maxBottom, bottom())
  })

  // Sends an engagement event for the current pageview if there is news: scrolled deeper
  // than last reported, or at least 1 s of engaged time (the first one always has news: its
  // initial scroll depth). The engaged time then restarts from zero.
  let engage = () => {
    if (runningSince) engagedMs += now() - runningSince
    runningSince = 0
    let sd = Math.round((maxBottom / doc.scrollingElement.scrollHeight) * 100)
    if (pageUrl && (sd > sentDepth || engagedMs >= 1000)) {
      send('engagement', { u: pageUrl, e: engagedMs, sd })
      sentDepth = sd
      engagedMs = 0
    }
  }

  /* Pageviews, including single-page-app navigation. */

  // Routers call pushState/replaceState with the same path all the time (state updates,
  // query-string filters): only a new pathname (or hash, in hash mode) is a new page.
  let page = () => {
    let key = loc.pathname + (hashMode ? loc.hash : '')
    if (key != lastPage) {
      engage() // closes the previous page of a SPA; a no-op before the first pageview
      lastPage = key
      pageUrl = loc.href
      sentDepth = -1
      engagedMs = 0
      runningSince = now()
      maxBottom = bottom()
      send('pageview')
    }
  }

  for (let method of ['pushState', 'replaceState']) {
    let original = history[method]
    history[method] = function () {
      original.apply(this, arguments)
      page()
    }
  }
  on(window, 'popstate', page)
  on(window, 'hashchange', page) // a no-op unless data-hash: page() compares pathnames
  // Leaving the page: if it comes back from the back/forward cache, that is a new pageview.
  on(window, 'pagehide', () => {
    lastPage = 0
  })

  /* Clicks: tagged elements, file downloads, outbound links. */

  // Nothing here calls preventDefault or delays a navigation: the keepalive request survives
  // it, so middle clicks, ctrl/cmd-clicks and target=_blank behave exactly as without us.
  let onClick = (event) => {
    let type = event.type
    let target = event.target
    let link = target.closest('a[href]')
    let tagged = target.closest('[class*="avocet-event-name"],[class*="plausible-event-name"]')
    if (type == 'auxclick' && event.button != 1) return // only the middle button opens links
    if (tagged) {
      // A tagged form counts on submit, never on clicks inside it; other tagged elements on click.
      if ((tagged.tagName == 'FORM') != (type == 'submit')) return
      // class="avocet-event-name=Signup avocet-event-plan=pro+yearly plausible-revenue-amount=9"
      // collects {event: {name, plan}, revenue: {amount}}.
      let found = {}
      for (let cls of tagged.classList) {
        let m = cls.match(/^(?:avocet|plausible)-(event|revenue)-(.+?)(?:=|--)(.+)/)
        if (m) (found[m[1]] = found[m[1]] || {})[m[2]] = m[3].replace(/\+/g, ' ')
      }
      let props = found.event || {}
      let name = props.name
      delete props.name
      if (link) props.url = link.href
      if (name) send(name, { props, revenue: found.revenue })
    } else if (link && link.host) {
      // (link.host also skips mailto:/tel: and SVG links, whose href is not a string)
      let url = link.href.split(/[?#]/)[0]
      // A file on another host is a download first: that is what the visitor came for.
      if (fileTypes.includes(url.split('.').pop()))
        send('File Download', { props: { url } })
      else if (link.host != loc.host) send('Outbound Link: Click', { props: { url: link.href } })
    }
  }
  on(doc, 'click', onClick)
  on(doc, 'auxclick', onClick)
  on(doc, 'submit', onClick)

  /* Start: the first pageview, then the public API and whatever was queued before we loaded. */

  // Hidden tab, lost focus or page leaving: bank the time and report. Focus back: restart the
  // clock. The first pageview waits until the page is visible: a prerendered page or a tab
  // opened in the background is not a visit until seen (and after a back/forward cache
  // restore, lastPage is 0 again).
  let onVisibility = () => {
    if (doc.hidden) engage()
    else if (!lastPage) {
      page()
      if (has('404')) send('404', { props: { path: loc.pathname } })
    } else if (doc.hasFocus()) runningSince = runningSince || now()
    else engage()
  }
  on(doc, 'visibilitychange', onVisibility)
  on(window, 'blur', onVisibility)
  on(window, 'focus', onVisibility)
  onVisibility()

  let install = (global, fn) => {
    let queue = (window[global] || {}).q || []
    window[global] = fn
    for (let args of queue) fn.apply(0, args)
  }
  install('avocet', send)
  install('plausible', send)
  install('zenovay', (command, name, props) => {
    if (command == 'track') send(name, { props })
  })
})()
