// "My jobs" and an item's "Background jobs": refresh the rows of unfinished jobs
// from the page's REST endpoint (data-refresh-url) every 2 seconds, with a plain fetch.
(function () {
  "use strict";
  var UNFINISHED = ["pending", "delayed", "active"];
  var CLASSES = {pending: "text-bg-secondary", delayed: "text-bg-info", active: "text-bg-primary",
                 failed: "text-bg-danger", completed: "text-bg-success"};

  function formatTime(iso) {
    return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
  }

  function update(row, job, titles) {
    row.dataset.state = job.state;
    row.className = "zasync-job zasync-" + job.state;
    var badge = row.querySelector(".zasync-state-badge");
    badge.textContent = titles[job.state] || job.state;
    badge.className = "badge zasync-state-badge " + (CLASSES[job.state] || "text-bg-light");
    var progress = row.querySelector(".zasync-progress");
    progress.hidden = job.progress === null;
    if (job.progress !== null) {
      var bar = progress.querySelector(".progress-bar");
      bar.style.width = job.progress + "%";
      bar.setAttribute("aria-valuenow", job.progress);
      bar.textContent = job.progress + " %";
    }
    row.querySelector(".zasync-result").textContent = job.result || "";
    row.querySelector(".zasync-error").textContent = job.error || "";
    row.querySelector(".zasync-started").textContent = formatTime(job.started);
    row.querySelector(".zasync-ended").textContent = formatTime(job.ended);
    if (!job.cancellable) {
      var form = row.querySelector("form");
      if (form) { form.remove(); }
    }
  }

  function unfinishedRows(table) {
    return Array.prototype.filter.call(table.querySelectorAll("tr[data-job-id]"), function (row) {
      return UNFINISHED.indexOf(row.dataset.state) >= 0;
    });
  }

  function refresh(table) {
    if (!unfinishedRows(table).length) { return; }
    fetch(table.dataset.refreshUrl, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {items: []}; })
      .then(function (data) {
        data.items.forEach(function (job) {
          var row = table.querySelector('tr[data-job-id="' + job.id + '"]');
          if (row) { update(row, job, JSON.parse(table.dataset.stateTitles || "{}")); }
        });
      })
      .catch(function () {})
      .then(function () { window.setTimeout(function () { refresh(table); }, 2000); });
  }

  var table = document.getElementById("zasync-personal-jobs");
  if (table) { window.setTimeout(function () { refresh(table); }, 2000); }
})();
