// The console works without JavaScript; this only adds "Copy" buttons next
// to elements marked data-copy, for payloads, keys and device ids.
"use strict";
document.querySelectorAll("[data-copy]").forEach(function (source) {
  var button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.addEventListener("click", function () {
    var text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      if (source.select) { source.select(); }
      button.textContent = "Press Ctrl+C";
    });
  });
  source.insertAdjacentElement("afterend", button);
});
