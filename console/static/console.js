/* The support console's only script: it follows a call as it goes, counts the
 * challenge code down, and keeps a form from being sent twice. Every page works
 * without it; it loads from this site only (the CSP allows nothing else). */
(function () {
  "use strict";

  var STAGES = ["queued", "ringing", "answered", "ended"];

  function minutesAndSeconds(seconds) {
    var s = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (s < 10 ? "0" : "") + s;
  }

  function setText(element, text) {
    // Only a real change: a live region re-announces whatever is written to it.
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showStage(section, state) {
    var current = STAGES.indexOf(state.stage);
    section.querySelectorAll("[data-stage-step]").forEach(function (step, index) {
      step.classList.toggle("done", index < current || state.final);
      step.classList.toggle("current", index === current && !state.final);
      if (index === STAGES.length - 1) {
        setText(step, state.final ? state.status : "ended");
      }
    });
  }

  function followCall(section) {
    var word = section.querySelector('[data-testid="call-status"]');
    var sentence = section.querySelector("[data-progress]");
    var countdown = section.querySelector("[data-countdown]");
    var pollMs = Number(section.dataset.pollMs) || 1000;
    var deadline = Date.now() + Number(section.dataset.expiresIn) * 1000;
    var ended = section.dataset.final === "true";
    var failures = 0;
    var ticker = null;

    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      setText(countdown, minutesAndSeconds(left));
      if (left === 0 || ended) {
        window.clearInterval(ticker);
      }
    }

    function show(state) {
      setText(word, state.status);
      setText(sentence, state.progress);
      section.dataset.status = state.status;
      section.dataset.stage = state.stage;
      showStage(section, state);
      deadline = Date.now() + state.expires_in * 1000;
      if (state.final) {
        ended = true;
        section.classList.add("ended");
        var expiry = section.querySelector("[data-expiry]");
        if (expiry) {
          expiry.textContent = "This code no longer works.";
        }
      }
    }

    function poll() {
      window.fetch(section.dataset.statusUrl, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" }
      }).then(function (response) {
        if (response.status === 401 || response.status === 404) {
          throw new Error(response.status === 401 ? "signed-out" : "gone");
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      }).then(function (state) {
        failures = 0;
        show(state);
        if (!state.final) {
          window.setTimeout(poll, pollMs);
        }
      }).catch(function (error) {
        if (error.message === "signed-out") {
          setText(sentence, "Your session has ended: sign in again to follow this call.");
          return;
        }
        if (error.message === "gone") {
          setText(sentence, "This call is no longer on record.");
          return;
        }
        failures += 1;
        setText(sentence, "Lost touch with the service; trying again…");
        window.setTimeout(poll, Math.min(10000, pollMs * Math.pow(2, failures)));
      });
    }

    if (!ended) {
      ticker = window.setInterval(tick, 1000);
      tick();
      window.setTimeout(poll, pollMs);
    }
  }

  function sendOnce(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sending === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.sending = "true";
      // Sent again after a minute (the first answer lost, say), the server's own checks decide.
      window.setTimeout(function () { form.dataset.sending = "false"; }, 60000);
    });
  }

  document.querySelectorAll("[data-call]").forEach(followCall);
  document.querySelectorAll("form[method=post]").forEach(sendOnce);
  // Back to a page kept in the browser's cache: its forms may be sent again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.dataset.sending = "false";
    });
  });
}());
