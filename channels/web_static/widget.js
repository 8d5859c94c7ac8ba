/*
 * Switchboard web chat widget. Embed on any page with one tag:
 *
 *   <script src="https://support.example.com/widget.js" async></script>
 *
 * Optional attributes: data-server="https://support.example.com" (default: where this script came
 * from), data-open="true" (start opened), data-title="Help" (the header text).
 *
 * The widget lives in an open shadow root (its styles cannot leak into the page or the page's into
 * it). It keeps its session token, the transcript it has shown and its resume cursor in
 * localStorage; on load and on every reconnect it asks the server for what came after the cursor
 * and shows each message id once, so nothing is lost and nothing is shown twice. The cursor moves
 * only on the server's `history` frames (their `cursor`), never on a pushed message: pushes arrive
 * out of id order (an agent's reply can be pushed after a later message, or lost with a closing
 * socket). Unsent messages are queued (also in localStorage) and resent with the same client_id,
 * which the server treats as the same message.
 * All text is rendered with textContent; only http(s) links are made clickable.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__switchboardWidget) return;
  window.__switchboardWidget = true;

  var server = (script.getAttribute("data-server") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var startOpen = script.getAttribute("data-open") === "true";
  var title = script.getAttribute("data-title") || "Support";
  var wsBase = server.replace(/^http(s?):/, "ws$1:");
  var KEY = "sb:" + server + ":";
  var MAX_CACHED = 300;

  // ---- storage -------------------------------------------------------------------------------
  function load(name, fallback) {
    try {
      var v = localStorage.getItem(KEY + name);
      return v === null ? fallback : JSON.parse(v);
    } catch (e) { return fallback; }
  }
  function save(name, value) {
    try { localStorage.setItem(KEY + name, JSON.stringify(value)); } catch (e) { /* private mode: memory only */ }
  }
  function drop(name) { try { localStorage.removeItem(KEY + name); } catch (e) { /* ignore */ } }

  var token = load("token", null);
  var cursor = load("last", 0) || 0;  // the next resume's `after`: from the server's history frames only
  var cached = load("log", []);      // [{id, author_kind, author_name, text, created_at, client_id}]
  var queue = load("queue", []);     // [{client_id, text}] not yet acknowledged
  var wantHuman = false;

  // ---- DOM -------------------------------------------------------------------------------------
  var hostEl = document.createElement("div");
  hostEl.id = "sb-widget-host";
  var root = hostEl.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    "*{box-sizing:border-box}" +
    "#sb-widget{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2433}" +
    "#sb-launch{display:flex;align-items:center;gap:8px;margin-left:auto;border:0;border-radius:999px;padding:12px 18px;background:#2346d8;color:#fff;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 6px 20px rgba(20,30,80,.25)}" +
    "#sb-launch:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #ffb000;outline-offset:2px}" +
    "#sb-panel{display:flex;flex-direction:column;width:370px;height:560px;max-height:calc(100vh - 40px);background:#fff;border-radius:14px;overflow:hidden;box-shadow:0 12px 40px rgba(20,30,80,.28)}" +
    "#sb-widget[data-open=false] #sb-panel{display:none}#sb-widget[data-open=true] #sb-launch{display:none}" +
    "header{display:flex;align-items:center;gap:10px;padding:12px 14px;background:#2346d8;color:#fff}" +
    "header h2{flex:1;margin:0;font-size:16px;font-weight:650}" +
    "#sb-status{font-size:12px;display:flex;align-items:center;gap:6px;opacity:.95}" +
    "#sb-status::before{content:'';width:8px;height:8px;border-radius:50%;background:#f5b400}" +
    "#sb-status[data-state=open]::before{background:#39d98a}#sb-status[data-state=closed]::before{background:#ff6b6b}" +
    "#sb-close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px;border-radius:6px}" +
    "#sb-log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:#f5f7fb}" +
    ".sb-msg{max-width:85%;padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".sb-options{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}" +
    ".sb-option{border:1px solid #2346d8;background:#fff;color:#2346d8;border-radius:999px;padding:4px 10px;font:inherit;font-size:13px;cursor:pointer}" +
    ".sb-msg .sb-who{display:block;font-size:11px;font-weight:650;opacity:.7;margin-bottom:2px}" +
    ".sb-customer{align-self:flex-end;background:#2346d8;color:#fff;border-bottom-right-radius:4px}" +
    ".sb-customer a{color:#fff}" +
    ".sb-bot,.sb-agent{align-self:flex-start;background:#fff;border:1px solid #dde3ef;border-bottom-left-radius:4px}" +
    ".sb-agent{border-color:#9ad6b0;background:#f1fbf4}" +
    ".sb-system{align-self:center;max-width:95%;background:#fff7e0;border:1px solid #f1d58a;font-size:13px;text-align:center}" +
    ".sb-pending{opacity:.6}.sb-failed{background:#b3261e !important}" +
    ".sb-empty{color:#5b6477;font-size:14px;text-align:center;margin:auto 10px}" +
    ".sb-contact{margin-top:6px;font-size:13px}.sb-contact label{display:block}.sb-contact input{width:100%;margin-top:4px;padding:6px;border:1px solid #c5ccda;border-radius:8px;font:inherit}" +
    ".sb-offer{display:flex;gap:6px;margin-top:6px;flex-wrap:wrap;justify-content:center}" +
    ".sb-offer button{border:1px solid #c5ccda;background:#fff;border-radius:999px;padding:2px 10px;font:inherit;font-size:13px;cursor:pointer;color:#1d2433}" +
    ".sb-offer button[aria-pressed=true]{background:#2346d8;border-color:#2346d8;color:#fff}.sb-offer button:disabled{cursor:default;opacity:.75}" +
    "#sb-typing{padding:0 14px 6px;font-size:13px;color:#5b6477;background:#f5f7fb}" +
    "#sb-typing[hidden],#sb-error[hidden]{display:none}" +
    "#sb-error{margin:0;padding:8px 14px;font-size:13px;background:#fdecea;color:#8c1d18;border-top:1px solid #f4c7c3}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e7f0;background:#fff}" +
    "textarea{flex:1;resize:none;height:42px;max-height:120px;padding:10px;border:1px solid #c5ccda;border-radius:10px;font:inherit;color:inherit}" +
    "#sb-send{border:0;border-radius:10px;padding:0 16px;background:#2346d8;color:#fff;font:inherit;font-weight:600;cursor:pointer}" +
    ".sb-actions{display:flex;justify-content:space-between;align-items:center;padding:0 10px 10px;background:#fff}" +
    "#sb-human{flex:none;white-space:nowrap;border:1px solid #2346d8;background:#fff;color:#2346d8;border-radius:999px;padding:6px 12px;font:inherit;font-size:13px;cursor:pointer}" +
    ".sb-actions{gap:8px}.sb-hint{font-size:11px;color:#6b7488;text-align:right}" +
    "@media (max-width:400px){.sb-hint{display:none}}" +
    "@media (max-width:480px){#sb-widget{right:0;bottom:0;left:0}#sb-widget[data-open=false]{left:auto;right:12px;bottom:12px}" +
    "#sb-panel{width:100vw;height:100vh;height:100dvh;max-height:none;border-radius:0}}" +
    "</style>" +
    "<div id='sb-widget' data-open='false'>" +
    "<button id='sb-launch' type='button' aria-expanded='false' aria-controls='sb-panel'>&#128172; Chat with us</button>" +
    "<section id='sb-panel' role='dialog' aria-labelledby='sb-title'>" +
    "<header><h2 id='sb-title'></h2><span id='sb-status' data-state='connecting' role='status'>Connecting\u2026</span>" +
    "<button id='sb-close' type='button' aria-label='Close chat'>&times;</button></header>" +
    "<div id='sb-log' role='log' aria-live='polite' aria-relevant='additions' aria-label='Conversation' tabindex='0'></div>" +
    "<div id='sb-typing' hidden aria-live='polite'>Assistant is typing\u2026</div>" +
    "<p id='sb-error' role='alert' hidden></p>" +
    "<form id='sb-form' novalidate><textarea id='sb-input' rows='1' aria-label='Type your message' placeholder='Ask a question\u2026' autocomplete='off'></textarea>" +
    "<button id='sb-send' type='submit' aria-label='Send message'>Send</button></form>" +
    "<div class='sb-actions'><button id='sb-human' type='button'>Talk to a human</button>" +
    "<span class='sb-hint'>Enter to send \u00b7 Shift+Enter for a new line</span></div>" +
    "</section></div>";

  function $(id) { return root.getElementById(id); }
  var widget = $("sb-widget"), launch = $("sb-launch"), panel = $("sb-panel"), log = $("sb-log");
  var statusEl = $("sb-status"), typingEl = $("sb-typing"), errorEl = $("sb-error");
  var input = $("sb-input"), form = $("sb-form"), human = $("sb-human"), closeBtn = $("sb-close");
  $("sb-title").textContent = title;

  function setOpen(open, focus) {
    widget.setAttribute("data-open", open ? "true" : "false");
    launch.setAttribute("aria-expanded", open ? "true" : "false");
    if (focus) (open ? input : launch).focus();
    if (open) scrollDown();
  }
  launch.addEventListener("click", function () { setOpen(true, true); });
  closeBtn.addEventListener("click", function () { setOpen(false, true); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false, true); });

  // ---- rendering ---------------------------------------------------------------------------------
  var byId = {}, byClient = {};
  var LABEL = { customer: "You", bot: "Assistant", system: "", agent: "Support team", supervisor: "Support team" };
  var URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

  function fillText(el, text) {
    var last = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      el.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = document.createElement("a");
      a.href = m[0]; a.textContent = m[0]; a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
      el.appendChild(a);
      last = m.index + m[0].length;
    }
    el.appendChild(document.createTextNode(text.slice(last)));
  }

  function kindClass(kind) {
    if (kind === "customer") return "sb-customer";
    if (kind === "agent" || kind === "supervisor") return "sb-agent";
    if (kind === "system") return "sb-system";
    return "sb-bot";
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function place(el, id) {
    // keep server order (by id); messages without an id yet (pending) stay at the end
    var kids = log.children;
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i];
      if (k === el || !k.classList.contains("sb-msg")) continue;
      var kid = k.getAttribute("data-id");
      if (!kid || (id && Number(kid) > id)) { log.insertBefore(el, k); return; }
    }
    log.appendChild(el);
  }

  function offer(label) {
    var box = document.createElement("div");
    box.className = "sb-offer"; box.setAttribute("role", "group"); box.setAttribute("aria-label", label);
    return box;
  }

  function offerButton(box, text, label, onClick) {
    var b = document.createElement("button");
    b.type = "button"; b.textContent = text; b.setAttribute("aria-label", label); b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", function () { onClick(b); });
    box.appendChild(b);
    return b;
  }

  function feedbackButtons(messageId) {
    // 👍/👎 on a bot answer: a 👎 tells the team the answer missed
    var box = offer("Was this answer helpful?");
    function vote(helpful) {
      return function (b) {
        fetch(server + "/api/web/feedback", { method: "POST", credentials: "omit", headers: { "Content-Type": "text/plain" },
                                              body: JSON.stringify({ token: token, message_id: messageId, helpful: helpful }) })
          .then(function (r) {
            if (!r.ok) throw new Error("feedback " + r.status);
            box.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
          })
          .catch(function () { showError("We couldn't record that just now."); });
      };
    }
    offerButton(box, "\uD83D\uDC4D", "Helpful", vote(true));
    offerButton(box, "\uD83D\uDC4E", "Not helpful", vote(false));
    return box;
  }

  function contactForm() {
    // when the conversation goes to people: an optional way to reach the customer (skippable)
    var box = document.createElement("form");
    box.className = "sb-contact"; box.setAttribute("aria-label", "How can we reach you? (optional)");
    var label = document.createElement("label");
    label.textContent = "Email or phone, if you'd like us to reach you (optional)";
    var field = document.createElement("input");
    field.type = "text"; field.autocomplete = "email"; field.maxLength = 320; field.setAttribute("aria-label", "Email or phone");
    label.appendChild(field);
    var row = document.createElement("div"); row.className = "sb-offer";
    var send = document.createElement("button"); send.type = "submit"; send.textContent = "Send";
    var skip = document.createElement("button"); skip.type = "button"; skip.textContent = "No thanks";
    row.appendChild(send); row.appendChild(skip);
    box.appendChild(label); box.appendChild(row);
    function done(text) { save("contact", true); box.textContent = text; }
    skip.addEventListener("click", function () { done("OK, we'll reply here."); });
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      var value = field.value.trim();
      if (!value) return;
      var body = { token: token };
      body[value.indexOf("@") >= 0 ? "email" : "phone"] = value;
      fetch(server + "/api/web/contact", { method: "POST", credentials: "omit", headers: { "Content-Type": "text/plain" },
                                           body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (res.ok) done("Thanks — we'll use it to reach you if we need to.");
          else showError((res.body && res.body.error) || "That didn't work.");
        })
        .catch(function () { showError("We couldn't save that just now."); });
    });
    return box;
  }

  function ratingButtons(messageId) {
    // a satisfaction survey: a click sends the number as the customer's reply (typing it works too),
    // then an optional comment box appears under it (skippable)
    var wrap = document.createElement("div");
    var box = offer("Rate our help from 1 to 5");
    wrap.appendChild(box);
    for (var n = 1; n <= 5; n++) {
      (function (score) {
        offerButton(box, String(score), "Rate " + score + " of 5", function (b) {
          b.setAttribute("aria-pressed", "true");
          box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          save("rated:" + messageId, true);  // a reload does not offer it again (a second number would reopen)
          input.value = String(score);
          submit();
          wrap.appendChild(commentForm());
        });
      })(n);
    }
    return wrap;
  }

  function commentForm() {
    // the optional comment after a rating: POST /api/web/csat-comment
    var box = document.createElement("form");
    box.className = "sb-contact sb-comment"; box.setAttribute("aria-label", "Add a comment (optional)");
    var label = document.createElement("label");
    label.textContent = "Anything to add? (optional)";
    var field = document.createElement("input");
    field.type = "text"; field.maxLength = 1000; field.setAttribute("aria-label", "Comment");
    label.appendChild(field);
    var row = document.createElement("div"); row.className = "sb-offer";
    var send = document.createElement("button"); send.type = "submit"; send.textContent = "Send comment";
    var skip = document.createElement("button"); skip.type = "button"; skip.textContent = "Skip";
    row.appendChild(send); row.appendChild(skip);
    box.appendChild(label); box.appendChild(row);
    skip.addEventListener("click", function () { box.remove(); });
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      var value = field.value.trim();
      if (!value) return;
      fetch(server + "/api/web/csat-comment", { method: "POST", credentials: "omit", headers: { "Content-Type": "text/plain" },
                                                body: JSON.stringify({ token: token, comment: value }) })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (res.ok) box.textContent = "Thanks for the comment.";
          else showError((res.body && res.body.error) || "That didn't work.");
        })
        .catch(function () { showError("We couldn't save that just now."); });
    });
    return box;
  }

  function render(m, pending) {
    var emptyEl = log.querySelector(".sb-empty");
    if (emptyEl) emptyEl.remove();
    if (m.id && byId[m.id]) return false;
    var el = m.client_id ? byClient[m.client_id] : null;
    if (!el) {
      el = document.createElement("div");
      el.className = "sb-msg " + kindClass(m.author_kind);
      var who = m.author_kind === "customer" ? LABEL.customer : (m.author_name || LABEL[m.author_kind] || "");
      if (who) {
        var w = document.createElement("span");
        w.className = "sb-who"; w.textContent = who;
        el.appendChild(w);
      }
      var t = document.createElement("span");
      t.className = "sb-text";
      fillText(t, m.text || "");
      el.appendChild(t);
      if (m.options && m.options.length) el.appendChild(optionButtons(m.options));
      if (m.actions === "feedback" && m.id) el.appendChild(feedbackButtons(m.id));
      if (m.actions === "rating" && m.id && !load("rated:" + m.id, false)) el.appendChild(ratingButtons(m.id));
      if (m.actions === "contact" && !load("contact", false)) el.appendChild(contactForm());
      if (m.created_at) el.title = new Date(m.created_at).toLocaleString();
      if (m.client_id) { el.setAttribute("data-client-id", m.client_id); byClient[m.client_id] = el; }
    } else if (typeof m.text === "string") {
      // our own pending bubble, now acknowledged: show the text as the server stored it (PII masked)
      var shown = el.querySelector(".sb-text");
      if (shown && shown.textContent !== m.text) { shown.textContent = ""; fillText(shown, m.text); }
    }
    if (m.id) {
      el.setAttribute("data-id", String(m.id));
      el.classList.remove("sb-pending", "sb-failed");
      byId[m.id] = el;
      place(el, m.id);
    } else {
      if (pending) el.classList.add("sb-pending");
      if (!el.parentNode) log.appendChild(el);
    }
    scrollDown();
    return true;
  }

  function optionButtons(options) {
    // a clarifying question's choices: pressing one sends its label as the customer's reply
    var box = document.createElement("div");
    box.className = "sb-options";
    options.forEach(function (label) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "sb-option"; b.textContent = String(label);
      b.addEventListener("click", function () { sendText(String(label)); });
      box.appendChild(b);
    });
    return box;
  }

  function remember(m) {
    // a message the server has stored: cache it for the next page load
    if (!m.id) return;
    for (var i = 0; i < cached.length; i++) if (cached[i].id === m.id) return;
    cached.push({ id: m.id, author_kind: m.author_kind, author_name: m.author_name || null, text: m.text,
                  created_at: m.created_at || null, client_id: m.client_id || null, actions: m.actions || null });
    cached.sort(function (a, b) { return a.id - b.id; });
    if (cached.length > MAX_CACHED) cached = cached.slice(cached.length - MAX_CACHED);
    save("log", cached);
  }

  function resumedTo(f) {
    // the server's cursor: everything at or below it has been listed (an older server: the highest id listed)
    var next = typeof f.cursor === "number" ? f.cursor : f.messages.reduce(function (a, m) { return Math.max(a, m.id || 0); }, cursor);
    if (next > cursor) { cursor = next; save("last", cursor); }
  }

  function showEmpty() {
    if (log.children.length) return;
    var p = document.createElement("p");
    p.className = "sb-empty";
    p.textContent = "Hi! Ask us anything about orders, shipping, returns, refunds, billing or your account.";
    log.appendChild(p);
  }

  var errorTimer = null;
  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(function () { errorEl.hidden = true; }, 10000);
  }
  var typingTimer = null;
  function setTyping(on) {
    typingEl.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { typingEl.hidden = true; }, 20000);
  }
  function setStatus(state) {
    statusEl.setAttribute("data-state", state);
    statusEl.textContent = state === "open" ? "Online" : state === "connecting" ? "Connecting\u2026" : "Offline \u2014 retrying";
  }

  // ---- the connection ------------------------------------------------------------------------------
  var ws = null, ready = false, attempt = 0, reconnectTimer = null, retryTimer = null, paging = false;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function sendFrame(frame) {
    if (!ws || !ready || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function flush() {
    for (var i = 0; i < queue.length; i++) {
      if (!sendFrame({ type: "message", client_id: queue[i].client_id, text: queue[i].text })) return;
    }
    if (wantHuman && sendFrame({ type: "human" })) wantHuman = false;
  }

  function unqueue(clientId) {
    queue = queue.filter(function (q) { return q.client_id !== clientId; });
    save("queue", queue);
  }

  function retrySoon(seconds) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, Math.max(0.5, seconds) * 1000);
  }

  function newSession() {
    return fetch(server + "/api/web/session", { method: "POST", credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error("session " + r.status); return r.json(); })
      .then(function (body) { token = body.token; save("token", token); });
  }

  function scheduleReconnect() {
    setStatus("closed");
    clearTimeout(reconnectTimer);
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    reconnectTimer = setTimeout(connect, delay);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) return;
    setStatus("connecting");
    ready = false;
    var start = token ? Promise.resolve() : newSession();
    start.then(function () {
      // The token goes in the first frame, never in the URL (URLs end up in access logs).
      var sock = new WebSocket(wsBase + "/ws/chat");
      ws = sock;
      sock.onopen = function () { sock.send(JSON.stringify({ type: "auth", token: token })); };
      sock.onmessage = function (ev) { onFrame(ev.data); };
      sock.onclose = function (ev) {
        if (ws !== sock) return;
        ready = false;
        if (ev.code === 4401) {
          // the server does not know this session (expired, or its secret changed): start a new one
          token = null; drop("token"); cached = []; save("log", cached); cursor = 0; save("last", 0);
          byId = {}; byClient = {}; log.textContent = "";
          queue.forEach(function (q) { render({ client_id: q.client_id, author_kind: "customer", text: q.text }, true); });
          showEmpty();
          showError("Your previous chat session has ended; a new one has started.");
        }
        scheduleReconnect();
      };
    }).catch(function () { scheduleReconnect(); });
  }

  function onFrame(data) {
    var f;
    try { f = JSON.parse(data); } catch (e) { return; }
    switch (f.type) {
      case "session":  // silent renewal: the server hands out a fresh token for the same session
        if (typeof f.token === "string") { token = f.token; save("token", token); }
        break;
      case "ready":
        if (typeof f.token === "string") { token = f.token; save("token", token); }
        ready = true; attempt = 0; paging = false;
        setStatus("open");
        sendFrame({ type: "resume", after: cursor });
        flush();
        break;
      case "history":
        f.messages.forEach(function (m) {
          render(m);
          remember(m);
          if (m.client_id) unqueue(m.client_id);
        });
        // Later pages start after the last id listed, which may be past the cursor (messages written
        // just now): a page then moves the cursor only if no earlier page held it back.
        if (!paging) resumedTo(f);
        var lastId = f.messages.length ? f.messages[f.messages.length - 1].id : 0;
        if (f.more && lastId) {
          paging = paging || (typeof f.cursor === "number" && f.cursor < lastId);
          sendFrame({ type: "resume", after: lastId });
        } else paging = false;
        break;
      case "ack":
        unqueue(f.client_id);
        var el = byClient[f.client_id];
        if (!el) break;
        // the server's copy: card numbers and other personal data come back masked
        var m = { id: f.id, client_id: f.client_id, author_kind: "customer",
                  text: typeof f.text === "string" ? f.text : el.querySelector(".sb-text").textContent,
                  created_at: new Date().toISOString() };
        render(m);
        remember(m);
        break;
      case "message":  // shown and cached, but the cursor stays: a lower id may still be on its way
        render(f);
        remember(f);
        if (f.author_kind !== "customer") setTyping(false);
        break;
      case "typing":
        setTyping(!!f.on);
        break;
      case "human":
        break;
      case "error":
        onError(f);
        break;
    }
  }

  function onError(f) {
    var el = f.client_id ? byClient[f.client_id] : null;
    if (f.code === "rate_limited") {
      showError("You're sending messages quickly \u2014 we'll send yours in " + Math.ceil(f.retry_after) + " s.");
      if (f["for"] === "resume") setTimeout(function () { sendFrame({ type: "resume", after: cursor }); }, f.retry_after * 1000);
      else retrySoon(f.retry_after);
      return;
    }
    if (f.code === "server_error") {
      showError("We couldn't send that just now; retrying\u2026");
      retrySoon(3);
      return;
    }
    if (f.code === "too_long") showError("That message is too long (the limit is " + f.limit + " characters). It was not sent.");
    else if (f.code === "bad_frame") showError("That message could not be sent: " + (f.detail || "invalid message") + ".");
    else showError(f.detail || "Something went wrong.");
    if (f.client_id) {
      unqueue(f.client_id);
      if (el) { el.classList.remove("sb-pending"); el.classList.add("sb-failed"); el.setAttribute("aria-label", "not sent"); }
    }
  }

  // ---- user actions ------------------------------------------------------------------------------------
  function submit() {
    var text = input.value;
    if (!text.trim()) return;
    sendText(text);
    input.value = "";
  }

  function sendText(text) {
    var item = { client_id: uuid(), text: text };
    queue.push(item);
    save("queue", queue);
    render({ client_id: item.client_id, author_kind: "customer", text: text }, true);
    errorEl.hidden = true;
    sendFrame({ type: "message", client_id: item.client_id, text: text });
    if (!ready) connect();
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); submit(); input.focus(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  human.addEventListener("click", function () {
    wantHuman = true;
    if (sendFrame({ type: "human" })) wantHuman = false;
    else showError("Not connected yet \u2014 we'll ask for a person as soon as we reconnect.");
  });
  window.addEventListener("online", function () { attempt = 0; connect(); });

  // ---- start ------------------------------------------------------------------------------------------
  cached.forEach(function (m) { render(m); });
  queue.forEach(function (q) { render({ client_id: q.client_id, author_kind: "customer", text: q.text }, true); });
  showEmpty();
  (document.body || document.documentElement).appendChild(hostEl);
  setOpen(startOpen, false);
  connect();
})();
