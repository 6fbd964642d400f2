// Avocet settings UI: progressive enhancement only; every form works without this file.
(function () {
  'use strict'

  // Time zone picker: preselect the browser's zone on a new site.
  var zone = document.querySelector('select[data-browser-zone]')
  if (zone) {
    try {
      var tz = Intl.DateTimeFormat().resolvedOptions().timeZone
      if (tz && zone.querySelector('option[value="' + tz + '"]')) zone.value = tz
    } catch (e) { /* keep UTC */ }
  }

  // Unix-second timestamps in the viewer's locale.
  document.querySelectorAll('time[data-unix]').forEach(function (el) {
    var d = new Date(Number(el.dataset.unix) * 1000)
    el.dateTime = d.toISOString()
    el.textContent = d.toLocaleString()
  })

  // Copy buttons: data-copy="#id of the element whose text is copied".
  function copyText (text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text)
    var area = document.createElement('textarea')
    area.value = text
    area.setAttribute('readonly', '')
    area.style.position = 'fixed'
    area.style.opacity = '0'
    document.body.appendChild(area)
    area.select()
    var ok = document.execCommand('copy')
    document.body.removeChild(area)
    return ok ? Promise.resolve() : Promise.reject(new Error('copy failed'))
  }
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.addEventListener('click', function () {
      var source = document.querySelector(button.dataset.copy)
      var status = button.parentNode.querySelector('.copied')
      copyText(source.textContent).then(function () {
        if (status) status.textContent = 'Copied'
        button.dataset.copied = 'true'
      }, function () {
        if (status) status.textContent = 'Select the text and copy it by hand'
        var range = document.createRange()
        range.selectNodeContents(source)
        window.getSelection().removeAllRanges()
        window.getSelection().addRange(range)
      })
    })
  })

  // Snippet options: each checkbox adds an attribute the tracker reads.
  var snippet = document.getElementById('snippet')
  if (snippet) {
    var types = document.getElementById('file-types')
    var typesField = document.getElementById('file-types-field')
    var render = function () {
      var attrs = ['defer', 'data-site="' + snippet.dataset.site + '"']
      document.querySelectorAll('.options input[data-attr]').forEach(function (box) {
        if (!box.checked) return
        if (box.dataset.attr === 'data-file-types') {
          var list = types.value.split(',').map(function (s) { return s.trim().replace(/[^A-Za-z0-9]/g, '') })
            .filter(Boolean).join(',')
          if (list) attrs.push('data-file-types="' + list + '"')
        } else {
          attrs.push(box.dataset.attr)
        }
      })
      attrs.push('src="' + snippet.dataset.src + '"')
      snippet.textContent = '<script ' + attrs.join(' ') + '></' + 'script>'
      typesField.hidden = !document.getElementById('opt-file-types').checked
    }
    document.querySelectorAll('.options input').forEach(function (el) {
      el.addEventListener('input', render)
      el.addEventListener('change', render)
    })
    render()
  }

  // Verify installation: poll the last events and show them as they arrive.
  var table = document.getElementById('recent')
  if (table) {
    var status = document.getElementById('verify-status')
    var body = table.querySelector('tbody')
    var seen = null
    var labels = Array.prototype.map.call(table.querySelectorAll('thead th'), function (th) {
      return th.textContent
    })
    var cell = function (row, text) {
      var td = document.createElement('td')
      td.textContent = text == null || text === '' ? '—' : text
      td.dataset.label = labels[row.children.length] || ''  // the column's name on a phone
      row.appendChild(td)
    }
    var poll = function () {
      fetch(table.dataset.url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json() })
        .then(function (data) {
          var events = data.events || []
          var key = JSON.stringify(events)
          if (key !== seen) {
            var first = seen === null
            seen = key
            body.textContent = ''
            events.forEach(function (e) {
              var row = document.createElement('tr')
              if (!first) row.className = 'fresh'
              cell(row, new Date(e.time).toLocaleTimeString())
              cell(row, e.name)
              cell(row, e.path)
              cell(row, e.source || 'Direct')
              cell(row, e.device)
              cell(row, e.country)
              body.appendChild(row)
            })
            table.hidden = events.length === 0
            status.textContent = events.length
              ? 'Installed: events are arriving. The newest is first.'
              : 'Waiting for the first event…'
            status.className = events.length ? 'notice ok' : 'notice'
          }
          return data
        })
        .then(function (data) { if (data) showProblems(data) })
        .catch(function () { status.textContent = 'Could not check for events; retrying…' })
        .then(function () { setTimeout(poll, document.hidden ? 10000 : 2000) })
    }
    // Why hits were dropped (counts, never an address), and warnings such as a proxy whose
    // address every visitor gets.
    var problems = document.getElementById('verify-problems')
    var showProblems = function (data) {
      var dropped = data.dropped || []
      var warnings = data.warnings || []
      var list = document.getElementById('verify-warnings')
      list.textContent = ''
      warnings.forEach(function (text) {
        var li = document.createElement('li')
        li.textContent = text
        list.appendChild(li)
      })
      list.hidden = warnings.length === 0
      var rows = document.querySelector('#dropped tbody')
      rows.textContent = ''
      dropped.forEach(function (d) {
        var row = document.createElement('tr')
        var reason = document.createElement('td')
        var name = document.createElement('strong')
        name.textContent = d.reason.replace('_', ' ')
        reason.append(name, ': ' + d.explanation)
        row.appendChild(reason)
        var count = document.createElement('td')
        count.textContent = String(d.count)
        row.appendChild(count)
        var last = document.createElement('td')
        last.textContent = new Date(d.last_at * 1000).toLocaleTimeString()
        row.appendChild(last)
        rows.appendChild(row)
      })
      document.getElementById('dropped').hidden = dropped.length === 0
      problems.hidden = dropped.length === 0 && warnings.length === 0
    }
    poll()
  }

  // ISO-8601 timestamps (import jobs) in the viewer's locale.
  document.querySelectorAll('time[data-iso]').forEach(function (el) {
    var d = new Date(el.dateTime)
    if (!isNaN(d)) el.textContent = d.toLocaleString()
  })

  // Imports: the file picker offers the chosen source's file types; the upload shows its
  // progress; a running job's progress bar follows GET /api/v1/sites/{id}/imports/{job}.
  function initImportForm () {
    var form = document.getElementById('import-form')
    if (!form) return
    var file = document.getElementById('f-file')
    var accept = function () {
      var chosen = form.querySelector('input[name=source]:checked')
      if (chosen && chosen.dataset.accept) file.accept = chosen.dataset.accept
    }
    form.querySelectorAll('input[name=source]').forEach(function (r) { r.addEventListener('change', accept) })
    accept()
    if (!window.FormData || !window.XMLHttpRequest || !window.DOMParser) return
    form.addEventListener('submit', function (ev) {
      if (!file.files || !file.files.length) return // the server says what is missing
      ev.preventDefault()
      var bar = document.getElementById('upload-progress')
      var status = document.getElementById('upload-status')
      var button = document.getElementById('import-submit')
      var xhr = new XMLHttpRequest()
      xhr.open('POST', form.action)
      xhr.upload.addEventListener('progress', function (e) {
        if (!e.lengthComputable) return
        bar.hidden = false
        bar.max = e.total
        bar.value = e.loaded
        status.textContent = e.loaded < e.total
          ? 'Uploading… ' + Math.floor(100 * e.loaded / e.total) + ' %'
          : 'Uploaded; starting the import…'
      })
      xhr.addEventListener('load', function () {
        if (xhr.status === 200 && xhr.responseURL.indexOf('/imports?job=') !== -1) {
          window.location.assign(xhr.responseURL)
          return
        }
        // The form again with its errors (or an error page): show it in place.
        var doc = new DOMParser().parseFromString(xhr.responseText, 'text/html')
        var main = doc.getElementById('main')
        if (!main) { status.textContent = 'The upload failed (HTTP ' + xhr.status + ').'; button.disabled = false; return }
        document.getElementById('main').innerHTML = main.innerHTML
        initImportForm()
        var bad = document.querySelector('#main [aria-invalid="true"], #main .error:not([hidden])')
        if (bad && bad.focus) bad.focus()
      })
      xhr.addEventListener('error', function () {
        status.textContent = 'The upload failed: the connection was lost. Try again.'
        button.disabled = false
        bar.hidden = true
      })
      button.disabled = true
      status.textContent = 'Uploading…'
      xhr.send(new FormData(form))
    })
  }
  initImportForm()

  document.querySelectorAll('[data-job-url]').forEach(function (box) {
    var bar = box.querySelector('progress')
    var text = box.querySelector('[role=status]')
    var fmt = function (n) { return Number(n).toLocaleString('en-US') }
    var poll = function () {
      fetch(box.dataset.jobUrl, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json() })
        .then(function (job) {
          if (job.status !== 'queued' && job.status !== 'running') {
            window.location.reload()
            return
          }
          if (job.total_rows) {
            bar.max = job.total_rows
            bar.value = Math.min(job.done_rows, job.total_rows)
            text.textContent = job.done_rows >= job.total_rows
              ? 'Writing ' + fmt(job.done_rows) + ' rows…'
              : fmt(job.done_rows) + ' of ' + fmt(job.total_rows) + ' rows read (' +
                Math.floor(100 * job.done_rows / job.total_rows) + ' %)'
          } else if (job.status === 'running') {
            text.textContent = fmt(job.done_rows) + ' rows read…'
          }
          setTimeout(poll, document.hidden ? 5000 : 700)
        })
        .catch(function () {
          text.textContent = 'Could not check the import; retrying…'
          setTimeout(poll, 3000)
        })
    }
    poll()
  })
})()
