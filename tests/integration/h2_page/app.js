// SPDX-License-Identifier: MIT
// Runs once the page is parsed (defer): fetches data.json (a synchronous request, so it is
// done before the load event, when chromium --screenshot takes its picture) and paints #js
// with the colour it names (black if that failed; it stays grey if this never ran); the
// title says it ran, or what went wrong.
"use strict";
(function () {
    var box = document.getElementById("js");
    try {
        var req = new XMLHttpRequest();
        req.open("GET", "data.json", false);
        req.send();
        if (req.status !== 200) {
            throw new Error("data.json: status " + req.status);
        }
        box.style.background = JSON.parse(req.responseText).colour;
        document.title = "ran";
    } catch (e) {
        box.style.background = "rgb(0, 0, 0)";
        document.title = "failed: " + e.message;
    }
})();
