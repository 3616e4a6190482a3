// Served in place of https://s.pinimg.com/ct/core.js in the browser tests: the real tag is never
// fetched. Like core.js it takes over window.pintrk and replays the calls its stub queued; it
// records every pintrk(...) call in window.__pintrkCalls and sends nothing anywhere.
(function () {
  var calls = (window.__pintrkCalls = []);
  var queued = (window.pintrk && window.pintrk.queue) || [];
  window.pintrk = function () {
    calls.push(Array.prototype.slice.call(arguments));
  };
  window.pintrk.queue = [];
  window.pintrk.version = '3.0';
  queued.forEach(function (args) {
    calls.push(args);
  });
  window.__pintrkLoaded = true;
})();
