// Copy buttons: <button data-copy-target="some-id"> copies the text of the element with that
// id to the clipboard (the dashboard's methods paragraph). Loaded from our own origin: the CSP
// allows no inline script. Without the clipboard API (plain http), the text is selected instead,
// so Ctrl+C / Cmd+C copies it.
(function () {
  "use strict";

  function say(button, message) {
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (status) { status.textContent = message; }
  }

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var element = document.getElementById(button.getAttribute("data-copy-target"));
    if (!element) { return; }
    var text = element.innerText.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied."); },
        function () { select(element); say(button, "Selected: press Ctrl+C (Cmd+C) to copy."); }
      );
    } else {
      select(element);
      say(button, "Selected: press Ctrl+C (Cmd+C) to copy.");
    }
  });
})();
