/*! Footfall tracker — speaks the Seentics batch payload.
 *  <script async src="https://HOST/tracker.js" data-site-id="SITE"></script>
 *  Options (data-*): api-host (default: this script's origin), respect-dnt (honour
 *  Do-Not-Track), cookieless (no storage: the server derives a daily visitor hash).
 *  API: footfall.track(name, props), footfall.pageview(), footfall.flush().
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-site-id]");
  if (!script) return;
  var siteId = script.getAttribute("data-site-id");
  if (!siteId) return;
  var apiHost = script.getAttribute("data-api-host") || new URL(script.src, location.href).origin;
  var endpoint = apiHost.replace(/\/$/, "") + "/api/v1/analytics/event/batch";
  var cookieless = script.hasAttribute("data-cookieless");
  var dnt = navigator.doNotTrack === "1" || window.doNotTrack === "1";
  if (script.hasAttribute("data-respect-dnt") && dnt) {
    window.footfall = { track: function () {}, pageview: function () {}, flush: function () {} };
    return;
  }
  var VISITOR_TTL = 30 * 864e5, SESSION_GAP = 30 * 6e4;

  function rid() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function stored(key, ttl, sliding) {
    if (cookieless) return null;
    try {
      var now = Date.now(), raw = localStorage.getItem(key), item = raw && JSON.parse(raw);
      if (!item || !item.value || item.expiresAt < now) item = { value: rid() };
      item.expiresAt = sliding || !item.expiresAt ? now + ttl : item.expiresAt;
      localStorage.setItem(key, JSON.stringify(item));
      return item.value;
    } catch (e) {
      return null;
    }
  }
  function ids() {
    return {
      visitor_id: stored("seentics_visitor_id", VISITOR_TTL, false),
      session_id: stored("seentics_session_id", SESSION_GAP, true)
    };
  }
  function utm() {
    var p = new URLSearchParams(location.search), out = {};
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (k) {
      out[k] = p.get(k);
    });
    return out;
  }

  var queue = [], timer = null;
  function send(events) {
    var body = JSON.stringify({ siteId: siteId, domain: location.hostname, events: events });
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    fetch(endpoint, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } })
      .catch(function () { queue = events.concat(queue); });
  }
  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!queue.length) return;
    var batch = queue.splice(0, 50);
    send(batch);
    if (queue.length) flush();
  }
  function push(event) {
    var base = ids();
    event.website_id = siteId;
    if (base.visitor_id) event.visitor_id = base.visitor_id;
    if (base.session_id) event.session_id = base.session_id;
    event.page = location.pathname;
    event.referrer = document.referrer || null;
    event.user_agent = navigator.userAgent;
    event.timestamp = new Date().toISOString();
    event.id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : undefined;
    queue.push(event);
    if (!timer) timer = setTimeout(flush, 100);
  }

  var lastPath = null;
  function pageview() {
    if (location.pathname === lastPath) return;
    lastPath = location.pathname;
    var e = utm();
    e.event_type = "pageview";
    e.time_on_page = 0;
    push(e);
  }
  function track(name, props) {
    push({ event_type: String(name), properties: props || {} });
  }

  ["pushState", "replaceState"].forEach(function (fn) {
    var orig = history[fn];
    history[fn] = function () {
      var r = orig.apply(this, arguments);
      setTimeout(pageview, 0);
      return r;
    };
  });
  window.addEventListener("popstate", function () { setTimeout(pageview, 0); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);

  var api = { track: track, pageview: pageview, flush: flush, siteId: siteId };
  window.footfall = api;
  window.seentics = window.seentics || api;
  pageview();
})();
