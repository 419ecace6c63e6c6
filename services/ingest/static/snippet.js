/* leadflow snippet: page views, forms marked data-leadflow-form, leadflow.identify/track.
 * <script src="https://INGEST/v1/snippet.js" data-key="pk_..." async></script>
 * No dependencies. It never throws into the page and never holds up a form: a send that
 * fails (ingest down, refused, offline) is dropped. */
(function (window, document) {
  "use strict";
  try {
    start();
  } catch (e) { /* never into the page */ }

  function start() {
    var script = document.currentScript ||
      document.querySelector("script[data-key][src*='snippet.js']");
    if (!script || (window.leadflow && window.leadflow.loaded)) return;

    var STORE = "leadflow_aid";
    var ID = /^[A-Za-z0-9_-]{8,64}$/;
    var CONTACT = ["email", "first_name", "last_name", "company", "job_title", "industry",
      "company_size", "country", "phone"];
    var ALIASES = {
      e_mail: "email", email_address: "email", firstname: "first_name", fname: "first_name",
      given_name: "first_name", lastname: "last_name", lname: "last_name", surname: "last_name",
      family_name: "last_name", company_name: "company", organisation: "company",
      organization: "company", title: "job_title", jobtitle: "job_title", position: "job_title",
      employees: "company_size", tel: "phone", telephone: "phone", phone_number: "phone"
    };
    var NEVER = { password: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };
    var base = script.getAttribute("data-endpoint") ||
      script.src.replace(/\/v1\/snippet\.js([?#].*)?$/, "");
    var endpoint = base.replace(/\/$/, "") + "/v1/browser/events?key=" +
      encodeURIComponent(script.getAttribute("data-key") || "");
    var keepalive = typeof window.fetch === "function" && typeof window.Request === "function" &&
      "keepalive" in window.Request.prototype;

    function noop() {}

    function newId() {
      var c = window.crypto;
      if (c && c.randomUUID) return c.randomUUID();
      var bytes = [];
      for (var i = 0; i < 16; i++) {
        bytes.push(c && c.getRandomValues ? c.getRandomValues(new Uint8Array(1))[0]
          : Math.floor(Math.random() * 256));
      }
      return bytes.map(function (b) { return (b + 256).toString(16).slice(1); }).join("");
    }

    // The visitor's id is first-party: a cookie of the site's own host, mirrored in storage.
    function visitorId() {
      var id = null;
      try {
        var found = document.cookie.match(/(?:^|;\s*)leadflow_aid=([^;]+)/);
        id = (found && found[1]) || window.localStorage.getItem(STORE);
      } catch (e) { /* storage refused: the id lives as long as the page */ }
      if (!id || !ID.test(id)) id = newId();
      try {
        document.cookie = STORE + "=" + id + "; path=/; max-age=31536000; SameSite=Lax" +
          (window.location.protocol === "https:" ? "; Secure" : "");
        window.localStorage.setItem(STORE, id);
      } catch (e) { /* as above */ }
      return id;
    }
    var anonymousId = visitorId();

    function clip(value, length) { return String(value).slice(0, length); }

    function each(object, apply) {
      if (!object || typeof object !== "object") return;
      for (var name in object) {
        if (Object.prototype.hasOwnProperty.call(object, name) && object[name] != null) {
          apply(name, object[name]);
        }
      }
    }

    // What the server accepts, so that one odd field never costs the whole submission.
    function contactValue(field, value) {
      if (field === "company_size") {
        var size = /^\d{1,8}$/.test(value) ? parseInt(value, 10) : 0;
        return size >= 1 && size <= 10000000 ? size : undefined;
      }
      if (field === "country") return /^[A-Za-z]{2}$/.test(value) ? value.toUpperCase() : undefined;
      return clip(value, field === "email" ? 254 : field === "phone" ? 50 : 200);
    }

    function page(properties) {
      var seen = { url: clip(window.location.href, 2048), title: clip(document.title, 200) };
      if (document.referrer) seen.referrer = clip(document.referrer, 2048);
      each(properties, function (name, value) { seen[name] = value; });
      return seen;
    }

    function send(type, contact, properties, campaign) {
      var event = { id: newId(), channel: "web", type: type, contact: contact,
        properties: properties };
      if (campaign) event.campaign = campaign;
      var body = JSON.stringify(event);
      try {
        if (keepalive) {
          window.fetch(endpoint, { method: "POST", body: body, keepalive: true, mode: "cors",
            credentials: "omit", headers: { "Content-Type": "application/json" } })["catch"](noop);
          return;
        }
      } catch (e) { /* fall back to a beacon */ }
      try {
        if (window.navigator.sendBeacon) window.navigator.sendBeacon(endpoint, body);
      } catch (e) { /* dropped */ }
    }

    // A field maps by data-leadflow-field, else by its name (or an alias), else an email input.
    function fieldName(element) {
      var mapped = element.getAttribute("data-leadflow-field");
      if (mapped) return mapped;
      var name = String(element.name || "").toLowerCase().replace(/[\s-]+/g, "_");
      if (ALIASES[name]) return ALIASES[name];
      if (CONTACT.indexOf(name) >= 0) return name;
      return element.type === "email" ? "email" : null;
    }

    function formFields(form) {
      var contact = { anonymous_id: anonymousId };
      var properties = {};
      for (var i = 0; i < form.elements.length; i++) {
        var element = form.elements[i];
        var kind = String(element.type || "").toLowerCase();
        if (NEVER[kind] || !element.getAttribute) continue;
        if ((kind === "checkbox" || kind === "radio") && !element.checked) continue;
        var field = fieldName(element);
        var value = String(element.value || "").trim();
        if (!field || !value) continue;
        if (CONTACT.indexOf(field) >= 0) {
          if (!(field in contact)) contact[field] = contactValue(field, value);
        } else if (!(field in properties)) {
          properties[field] = clip(value, 200);
        }
      }
      return { contact: contact, properties: properties };
    }

    function onSubmit(event) {
      try {
        var form = event.target;
        if (!form || !form.hasAttribute || !form.hasAttribute("data-leadflow-form")) return;
        var fields = formFields(form);
        fields.properties.form = clip(form.getAttribute("data-leadflow-form") ||
          form.getAttribute("name") || form.getAttribute("id") || "form", 200);
        send("form_submit", fields.contact, page(fields.properties),
          form.getAttribute("data-leadflow-campaign"));
      } catch (e) { /* the form goes on regardless */ }
    }

    var leadflow = {
      loaded: true,
      anonymousId: function () { return anonymousId; },
      // The visitor said who they are (a login, a form the snippet does not see): a form_submit.
      identify: function (email, traits) {
        try {
          if (!email) return;
          var contact = { anonymous_id: anonymousId,
            email: contactValue("email", String(email).trim()) };
          var properties = { form: "identify" };
          each(traits, function (name, value) {
            if (name === "email") return;
            if (CONTACT.indexOf(name) < 0) properties[name] = value;
            else contact[name] = contactValue(name, String(value).trim());
          });
          send("form_submit", contact, page(properties));
        } catch (e) { /* never into the page */ }
      },
      // A page view of a single-page app's route, or another type the key allows.
      track: function (type, properties) {
        try {
          send(String(type), { anonymous_id: anonymousId }, page(properties));
        } catch (e) { /* never into the page */ }
      }
    };

    // Calls made before this script arrived: window.leadflow = {q: [["identify", [...]], ...]}.
    var queued = window.leadflow && window.leadflow.q;
    window.leadflow = leadflow;
    document.addEventListener("submit", onSubmit, true);
    if (document.prerendering) {
      document.addEventListener("prerenderingchange", function () { leadflow.track("page_view"); },
        { once: true });
    } else {
      leadflow.track("page_view");
    }
    for (var q = 0; queued && q < queued.length; q++) {
      try {
        var call = queued[q];
        if (call && leadflow[call[0]]) leadflow[call[0]].apply(leadflow, call[1] || []);
      } catch (e) { /* skip a bad call */ }
    }
  }
})(window, document);
