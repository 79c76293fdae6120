// exportd web UI. Progressive enhancement only: every page works without
// this script for the direct download. No inline code anywhere (CSP
// script-src 'self'); state is shown with the hidden attribute, classes
// and <progress>, never with inline styles.
(function () {
  'use strict';

  var nf = new Intl.NumberFormat('ko-KR');

  function $(id) { return document.getElementById(id); }

  function getJSON(url, opts) {
    opts = opts || {};
    opts.credentials = 'same-origin';
    opts.headers = opts.headers || {};
    opts.headers.Accept = 'application/json';
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var body = null;
        try { body = t ? JSON.parse(t) : null; } catch (e) { body = { error: { message: t } }; }
        return { status: r.status, ok: r.ok, body: body, headers: r.headers };
      });
    });
  }

  // A download starts in a hidden frame: the browser saves a file as
  // usual, and an answer that is no file (an error before the first byte:
  // the audit trail unavailable, the server at its bound) loads into the
  // frame instead, where it is read and shown by the button that asked.
  var frame = null, frameError = null;
  function startDownload(url, onError) {
    if (!frame) {
      frame = document.createElement('iframe');
      frame.hidden = true;
      frame.title = 'download';
      document.body.appendChild(frame);
      frame.addEventListener('load', function () {
        var doc = null;
        try { doc = frame.contentDocument; } catch (e) { return; }
        if (!doc || !frameError || doc.URL === 'about:blank' || !doc.body) return;
        var t = doc.body.textContent || '', body;
        try { body = JSON.parse(t); } catch (e) { body = { error: { message: t } }; }
        var report = frameError;
        frameError = null;
        report({ status: 0, ok: false, body: body });
      });
    }
    frameError = onError;
    frame.src = url;
  }

  function first(o, names) {
    if (!o) return undefined;
    for (var i = 0; i < names.length; i++) {
      var v = o[names[i]];
      if (v !== undefined && v !== null && v !== '') return v;
    }
    return undefined;
  }

  function bytes(n) {
    if (n == null || isNaN(n)) return '';
    var u = ['B', 'KB', 'MB', 'GB', 'TB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + '초';
    if (s < 3600) return Math.floor(s / 60) + '분 ' + (s % 60) + '초';
    return Math.floor(s / 3600) + '시간 ' + Math.floor((s % 3600) / 60) + '분';
  }

  function when(v) {
    if (!v) return '';
    var d = new Date(v);
    return isNaN(d) ? String(v) : d.toLocaleString('ko-KR', { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  var stateNames = { queued: '대기 중', running: '진행 중', succeeded: '완료', failed: '실패', cancelled: '취소됨', expired: '만료됨' };
  var terminal = { succeeded: 1, failed: 1, cancelled: 1, expired: 1 };

  // A job as the API returns it, possibly wrapped ({"job": {...}}).
  function unwrap(o) { return o && o.job && typeof o.job === 'object' ? o.job : o; }
  function jobID(j) { return first(j, ['id', 'job_id']); }
  function jobState(j) { return first(j, ['state', 'status']); }
  function jobRows(j) { return Number(first(j, ['rows', 'rows_done', 'rows_written']) || 0); }
  function jobTotal(j) { return Number(first(j, ['total_rows', 'estimated_rows', 'rows_total', 'estimate', 'total']) || 0); }
  function jobBytes(j) { return Number(first(j, ['bytes', 'size', 'bytes_written']) || 0); }
  function jobDownload(j) {
    var u = first(j, ['download_url', 'url', 'download']);
    if (!u && j && j.links) u = first(j.links, ['download']);
    if (!u && jobID(j) != null && jobState(j) === 'succeeded') u = '/v1/jobs/' + encodeURIComponent(jobID(j)) + '/download';
    return u;
  }

  // ---- the export form ----
  function initForm(form) {
    var notice = $('notice');
    var download = $('download');
    var background = $('background');
    form.noValidate = true; // our messages go next to the field
    if (background) background.hidden = false;

    function clearErrors() {
      form.querySelectorAll('.error').forEach(function (p) { p.hidden = true; p.textContent = ''; });
      form.querySelectorAll('.invalid').forEach(function (f) { f.classList.remove('invalid'); });
      notice.hidden = true;
      notice.classList.remove('warn');
      if (background) background.classList.remove('suggested');
    }
    function showNotice(msg, warn) {
      notice.textContent = msg;
      notice.classList.toggle('warn', !!warn);
      notice.hidden = false;
    }
    function showError(name, msg) {
      var p = $('err-' + name);
      if (!p) { showNotice(name + ': ' + msg); return; }
      p.textContent = msg;
      p.hidden = false;
      var f = p.closest('.field') || p.closest('fieldset.columns');
      if (f) f.classList.add('invalid');
    }
    // Client-side: the HTML constraints (required, min, max, pattern, …).
    function clientCheck() {
      var bad = null;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || !el.willValidate || el.type === 'hidden') return;
        var msg = el.checkValidity() ? '' : el.validationMessage;
        // minlength is checked by browsers only after typing: check it
        // here too (the purpose's text), trimmed as the server does.
        var min = el.minLength > 0 ? el.minLength : 0;
        if (!msg && min && el.value !== '' && el.value.trim().length < min) {
          msg = min + '자 이상 입력하세요 (지금 ' + el.value.trim().length + '자).';
        }
        if (!msg) return;
        showError(el.name, msg);
        bad = bad || el;
      });
      // The column choice: at least one column.
      var cols = form.querySelectorAll('input[type=checkbox][name=columns]');
      if (cols.length && !form.querySelector('input[type=checkbox][name=columns]:checked')) {
        showError('columns', '열을 하나 이상 고르세요.');
        bad = bad || cols[0];
      }
      if (bad) bad.focus();
      return !bad;
    }
    function suggestJob(msg) {
      background.classList.add('suggested');
      background.focus();
      showNotice(msg, true);
    }
    function showAPIError(res) {
      var e = (res.body && res.body.error) || { message: 'HTTP ' + res.status };
      if (e.code === 'too_many_exports') {
        // The server holds its bound of downloads (503): offer the job.
        stopQueue();
        if (!background) { showNotice('서버가 지금 바쁩니다: 잠시 후 다시 내려받으세요. (' + e.message + ')', true); return; }
        suggestJob('서버가 지금 바쁩니다: 백그라운드에서 준비하면 끝나는 대로 받을 수 있습니다. (' + e.message + ')');
        return;
      }
      if (res.status === 409 && e.suggest === 'job') {
        if (!background) {
          showNotice('이 조건은 바로 내려받기에는 너무 큽니다: 조건을 좁혀 주세요. (' + e.message + ')', true);
          return;
        }
        suggestJob('이 조건은 바로 내려받기에는 너무 큽니다: 백그라운드에서 준비하세요. (' + e.message + ')');
        return;
      }
      var details = e.details && e.details.length ? e.details : (e.field ? [{ field: e.field, message: e.message }] : []);
      if (!details.length) { showNotice(e.message); return; }
      details.forEach(function (d) { showError(d.field, d.message); });
      var el = form.elements[details[0].field];
      if (el && el.focus) el.focus();
    }
    function query() { return new URLSearchParams(new FormData(form)).toString(); }

    // A download that waits for a slot (a busy server) shows its place in
    // the queue, asked of GET /v1/queue/{name} every second; after a long
    // wait the background job is offered. The watch ends when the
    // download runs, ends or fails.
    var queue = null; // {name, timer, waiting}
    function stopQueue() {
      if (!queue) return;
      clearTimeout(queue.timer);
      if (queue.shown) notice.hidden = true;
      queue = null;
    }
    function watchQueue(name) {
      stopQueue();
      var q = queue = { name: name, timer: 0, waiting: false, shown: false, offered: false };
      function tick() {
        getJSON('/v1/queue/' + encodeURIComponent(name)).then(function (res) {
          if (queue !== q) return;
          if (!res.ok || res.body.state !== 'waiting') { stopQueue(); return; }
          var p = res.body;
          q.waiting = true;
          var msg = '서버가 바쁩니다: 내려받기가 차례를 기다리고 있습니다 (대기 ' + nf.format(p.position) + '번째, 기다린 시간 ' + duration(p.waited_seconds) + ').';
          if (background && (q.offered || p.waited_seconds >= longWait)) {
            q.offered = true;
            background.classList.add('suggested');
            msg += ' 오래 걸리면 백그라운드에서 준비할 수 있습니다: 이 내려받기는 취소됩니다.';
          }
          showNotice(msg, q.offered);
          q.shown = true;
          q.timer = setTimeout(tick, 1000);
        }, function () { if (queue === q) q.timer = setTimeout(tick, 2000); });
      }
      q.timer = setTimeout(tick, 500);
    }
    var longWait = 10; // seconds of waiting before the job is offered

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors();
      if (!clientCheck()) return;
      download.disabled = true;
      getJSON(form.dataset.check + '?' + query()).then(function (res) {
        if (res.ok) {
          var url = res.body.url;
          if (res.body.queue) url += (url.indexOf('?') < 0 ? '?' : '&') + 'queue=' + encodeURIComponent(res.body.queue);
          startDownload(url, showAPIError); // the browser's own download
          if (res.body.queue) watchQueue(res.body.queue);
          setTimeout(function () { download.disabled = false; }, 1000);
          return;
        }
        download.disabled = false;
        showAPIError(res);
      }, function () {
        download.disabled = false;
        form.submit(); // server-side validation, as without JavaScript
      });
    });

    if (background) background.addEventListener('click', function () {
      // A download still waiting for its turn leaves the queue: the job
      // replaces it.
      if (queue && queue.waiting) {
        fetch('/v1/queue/' + encodeURIComponent(queue.name), { method: 'DELETE', credentials: 'same-origin' });
      }
      stopQueue();
      clearErrors();
      if (!clientCheck()) return;
      var data = new FormData(form), params = {}, format = 'xlsx';
      data.forEach(function (v, k) {
        if (k === 'format') { format = v; return; }
        if (v === '') return;
        (params[k] = params[k] || []).push(v);
      });
      form.querySelectorAll('input[type=checkbox]').forEach(function (c) {
        if (c.name !== 'columns' && !c.checked && !params[c.name]) params[c.name] = ['false'];
      });
      background.disabled = true;
      getJSON(form.dataset.jobs, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ format: format, params: params })
      }).then(function (res) {
        background.disabled = false;
        if (!res.ok) { showAPIError(res); return; }
        var job = unwrap(res.body);
        followJob(job, res.headers.get('Location'));
      }, function (err) {
        background.disabled = false;
        showNotice('백그라운드 작업을 시작하지 못했습니다: ' + err);
      });
    });
  }

  // ---- a background job's progress ----
  function followJob(job, location) {
    var section = $('job'), bar = $('job-bar'), status = $('job-status'), link = $('job-download');
    var id = jobID(job);
    var base = location || ('/v1/jobs/' + encodeURIComponent(id));
    section.hidden = false;
    section.classList.remove('failed');
    link.hidden = true;
    bar.removeAttribute('value'); // indeterminate until a percentage is known
    section.scrollIntoView({ block: 'nearest' });
    var started = Date.now(), done = false, es = null, poll = null;

    function update(j) {
      j = unwrap(j);
      if (!j || done) return;
      var state = jobState(j) || 'running';
      var rows = jobRows(j), total = jobTotal(j), size = jobBytes(j);
      var pct = first(j, ['percent', 'progress']);
      if (pct == null && total > 0) pct = Math.min(100, rows / total * 100);
      if (state === 'succeeded') pct = 100;
      var parts = [stateNames[state] || state];
      // A retry writes the file again from its first row: say so, so the
      // bar going back is not taken for a fault.
      var attempt = first(j, ['attempt']);
      if (attempt > 1 && !terminal[state]) parts.push((attempt - 1) + '차 재시도');
      if (state === 'queued' && attempt >= 1 && j.error) parts.push('지난 시도 실패: ' + (typeof j.error === 'string' ? j.error : (j.error.message || '')));
      if (total > 0) parts.push(nf.format(rows) + ' / ' + nf.format(total) + '행');
      else if (rows) parts.push(nf.format(rows) + '행');
      if (pct != null) { bar.value = pct; parts.push(Math.floor(pct) + '%'); }
      if (size) parts.push(bytes(size));
      if (state === 'running' && total > rows && rows > 0) {
        var elapsed = (Date.now() - (Date.parse(j.started_at) || started)) / 1000;
        var eta = first(j, ['eta_seconds']);
        if (eta == null && elapsed > 0) eta = (total - rows) / (rows / elapsed);
        parts.push('남은 시간 약 ' + duration(eta));
      }
      if (state === 'failed' && j.error) parts.push(typeof j.error === 'string' ? j.error : (j.error.message || ''));
      status.textContent = parts.join(' · ');
      if (terminal[state]) {
        done = true;
        if (es) es.close();
        if (poll) clearInterval(poll);
        if (state === 'succeeded') {
          link.href = jobDownload(j);
          var name = first(j, ['file_name', 'filename']);
          link.textContent = name ? '파일 받기: ' + name : '파일 받기';
          var enc = section.dataset.encryption;
          if (enc && first(j, ['format']) === 'xlsx') {
            offerPassword(j, name);
            link.hidden = enc === 'required';
          } else {
            link.hidden = false;
            link.focus();
          }
        } else {
          section.classList.add('failed');
        }
      }
    }
    function startPolling() {
      if (poll || done) return;
      poll = setInterval(function () {
        getJSON(base).then(function (res) { if (res.ok) update(res.body); });
      }, 1000);
    }
    update(job);
    if (done) return;
    if (window.EventSource) {
      es = new EventSource(base + '/events');
      var onEvent = function (ev) {
        try { update(JSON.parse(ev.data)); } catch (e) { /* not JSON: ignore */ }
      };
      ['message', 'progress', 'state', 'job', 'done', 'succeeded', 'failed', 'end'].forEach(function (t) {
        es.addEventListener(t, onEvent);
      });
      es.onerror = function () {
        if (done) return;
        es.close();
        startPolling(); // the stream ended or is unavailable: ask instead
      };
    } else {
      startPolling();
    }
  }

  // ---- a password-protected workbook of a finished job ----
  // POST /v1/jobs/{id}/download with the password typed here, or
  // password=generate: the server answers the encrypted file, and a
  // generated password once in X-Exportd-Password, shown here and nowhere
  // else (it is neither stored nor logged).
  function offerPassword(j, name) {
    var pf = $('job-password'), pw = $('job-pw'), gen = $('job-pw-generate'), shown = $('job-pw-shown');
    if (!pf) return;
    var url = '/v1/jobs/' + encodeURIComponent(jobID(j)) + '/download';
    pf.hidden = false;
    shown.hidden = true;
    function fail(msg) {
      var p = $('err-password');
      p.textContent = msg;
      p.hidden = false;
      p.closest('.field').classList.add('invalid');
    }
    function get(password) {
      var p = $('err-password');
      p.hidden = true;
      p.closest('.field').classList.remove('invalid');
      pf.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
      fetch(url, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ password: password }).toString()
      }).then(function (r) {
        if (!r.ok) {
          return r.json().then(function (b) { fail((b && b.error && b.error.message) || ('HTTP ' + r.status)); },
            function () { fail('HTTP ' + r.status); });
        }
        var generated = r.headers.get('X-Exportd-Password');
        return r.blob().then(function (blob) {
          if (generated) {
            $('job-pw-value').textContent = generated;
            shown.hidden = false;
          }
          var a = document.createElement('a');
          a.href = URL.createObjectURL(blob);
          a.download = name || 'export.xlsx';
          a.hidden = true;
          document.body.appendChild(a);
          a.click();
          setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 60000);
        });
      }, function (err) { fail(String(err)); }).then(function () {
        pf.querySelectorAll('button').forEach(function (b) { b.disabled = false; });
        pw.value = '';
      });
    }
    pf.onsubmit = function (ev) {
      ev.preventDefault();
      if (pw.value.length < 8) { fail('암호는 8자 이상이어야 합니다.'); pw.focus(); return; }
      get(pw.value);
    };
    gen.onclick = function () { get('generate'); };
  }

  // ---- My exports ----
  function initJobs(box) {
    var table = $('jobs-table'), empty = $('jobs-empty'), tbody = table.querySelector('tbody');
    var titles = {};
    try { titles = JSON.parse(box.dataset.titles || '{}'); } catch (e) { /* names only */ }
    function cell(tr, text, cls) {
      var td = document.createElement('td');
      if (cls) td.className = cls;
      if (text instanceof Node) td.appendChild(text); else td.textContent = text == null ? '' : text;
      tr.appendChild(td);
    }
    function load() {
      getJSON(box.dataset.api).then(function (res) {
        if (!res.ok) {
          empty.textContent = '목록을 불러오지 못했습니다: ' + ((res.body && res.body.error && res.body.error.message) || res.status);
          return;
        }
        var list = Array.isArray(res.body) ? res.body : (res.body.jobs || res.body.items || []);
        tbody.textContent = '';
        list.map(unwrap).forEach(function (j) {
          var tr = document.createElement('tr'), state = jobState(j) || '';
          var ds = first(j, ['dataset', 'dataset_name']) || '';
          var a = document.createElement('a');
          a.href = '/ui/datasets/' + encodeURIComponent(ds);
          a.textContent = titles[ds] || ds;
          cell(tr, a);
          cell(tr, first(j, ['format']) || '');
          var badge = document.createElement('span');
          badge.className = 'state state-' + state;
          badge.textContent = stateNames[state] || state;
          cell(tr, badge);
          cell(tr, nf.format(jobRows(j)), 'num');
          cell(tr, bytes(jobBytes(j)), 'num');
          cell(tr, when(first(j, ['created_at', 'submitted_at', 'started_at'])));
          cell(tr, when(first(j, ['expires_at'])));
          var dl = jobDownload(j);
          if (state === 'succeeded' && dl) {
            var l = document.createElement('a');
            l.href = dl;
            l.className = 'button primary';
            l.textContent = '받기';
            l.title = first(j, ['file_name']) || '';
            cell(tr, l);
          } else {
            cell(tr, '');
          }
          tr.dataset.job = jobID(j);
          tbody.appendChild(tr);
        });
        table.hidden = list.length === 0;
        empty.hidden = list.length > 0;
        empty.textContent = '아직 백그라운드에서 준비한 파일이 없습니다.';
        var active = list.some(function (j) { return !terminal[jobState(unwrap(j))]; });
        if (active) setTimeout(load, 2000);
      }, function (err) { empty.textContent = '목록을 불러오지 못했습니다: ' + err; });
    }
    load();
  }

  var form = $('export');
  if (form) initForm(form);
  var jobs = $('jobs');
  if (jobs) initJobs(jobs);
})();
