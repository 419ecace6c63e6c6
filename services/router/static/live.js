// leadflow dashboard: the live hand-offs, from the router's stream. No dependencies.
"use strict";

const KINDS = ["assigned", "reassigned", "accepted", "escalated", "queued"];
const KEPT = 200; // lines in the feed
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

// When no rep can take leads, they queue one after the other: what sales ops needs from
// that run is how many are waiting and in which teams, not one line per lead that pushes
// every hand-off to a person out of sight. So queued leads in a row share one line.
const queues = new WeakMap(); // a queued line -> {leads: Set, teams: Map(team -> leads)}

function followHandoffs(token, name) {
  const live = $("live");
  const stream = new EventSource(`/v1/handoffs/stream?access_token=${encodeURIComponent(token)}`);
  for (const kind of KINDS) {
    stream.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data).data;
      const newest = live.firstElementChild;
      if (kind === "queued" && newest?.dataset.kind === "queued") {
        addToQueued(newest, event);
        return;
      }
      live.prepend(kind === "queued" ? queuedLine(event) : handoffLine(kind, event, name));
      while (live.children.length > KEPT) live.lastChild.remove();
    });
  }
  return stream;
}

function line(kind, event) {
  const item = el("li", { "data-kind": kind });
  item.append(el("time", { datetime: event.occurred_at }, clock.format(new Date(event.occurred_at))), " ");
  item.append(el("span", { class: "kind" }, kind));
  return item;
}

function handoffLine(kind, event, name) {
  const item = line(kind, event);
  item.dataset.lead = event.lead_id;
  const moved = event.previous_rep_id ? ` (from ${name(event.previous_rep_id)})` : "";
  const to = event.escalated_to ? ` · escalated to ${event.escalated_to}` : "";
  item.append(` ${name(event.rep_id)}${moved} · grade ${event.grade ?? "–"} · ${event.reason}${to}`);
  if (event.sla_deadline && kind !== "accepted") {
    const due = el("span", { class: "sla" }, ` · accept ${countdown(event.sla_deadline)}`);
    if (new Date(event.sla_deadline) < Date.now()) due.classList.add("late");
    item.append(due);
  }
  return item;
}

function queuedLine(event) {
  const item = line("queued", event);
  item.append(el("span", { class: "what" }));
  queues.set(item, { leads: new Set(), teams: new Map(), reason: event.reason });
  addToQueued(item, event);
  return item;
}

function addToQueued(item, event) {
  const queued = queues.get(item);
  if (queued.leads.has(event.lead_id)) return;
  queued.leads.add(event.lead_id);
  const team = event.team ?? "no team";
  queued.teams.set(team, (queued.teams.get(team) || 0) + 1);
  const count = queued.leads.size;
  const teams = [...queued.teams].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n}`).join(", ");
  item.dataset.count = count;
  item.querySelector("time").textContent = clock.format(new Date(event.occurred_at));
  item.querySelector(".what").textContent =
    ` ${count} ${count === 1 ? "lead" : "leads"} waiting · ${teams} · ${queued.reason}`;
}
