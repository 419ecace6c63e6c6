// leadflow dashboard: figures the way people read them. No dependencies.
"use strict";

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

// A duration in at most two units: "45 s", "14 min", "3 h 20 min", "2 d 6 h".
function duration(seconds) {
  if (seconds === null || seconds === undefined) return null;
  if (Math.round(seconds) < 1) return "< 1 s";
  if (Math.round(seconds) < MINUTE) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / MINUTE);
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 24 * 60) return two(Math.floor(minutes / 60), "h", minutes % 60, "min");
  const hours = Math.round(seconds / HOUR);
  return two(Math.floor(hours / 24), "d", hours % 24, "h");
}

function two(big, bigUnit, small, smallUnit) {
  return small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
}

const fromMinutes = (minutes) => (minutes === null || minutes === undefined ? null : duration(minutes * MINUTE));
const fromHours = (hours) => (hours === null || hours === undefined ? null : duration(hours * HOUR));

// A share of 1 as a whole percentage; a small share that is not zero does not read "0%".
function percent(share) {
  if (share === null || share === undefined) return null;
  if (share > 0 && share < 0.005) return "< 1%";
  return `${Math.round(100 * share)}%`;
}

const counting = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const amount = (value) => (value === null || value === undefined ? null : counting.format(value));

// How long until (or since) a deadline, from now.
function countdown(deadline) {
  const seconds = (new Date(deadline) - Date.now()) / 1000;
  return seconds >= 0 ? `in ${duration(seconds)}` : `${duration(-seconds)} late`;
}

// The ISO week of a moment ("2026-W48"), as the funnel report names its weekly slices.
function isoWeek(moment) {
  const day = new Date(Date.UTC(moment.getUTCFullYear(), moment.getUTCMonth(), moment.getUTCDate()));
  day.setUTCDate(day.getUTCDate() + 4 - (day.getUTCDay() || 7)); // the Thursday of its week
  const first = new Date(Date.UTC(day.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((day - first) / DAY / 1000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

// Every ISO week from start to end, in order, so weeks without leads show as zero.
function weeksBetween(start, end) {
  const weeks = [];
  for (let moment = new Date(start); moment <= end; moment = new Date(moment.getTime() + 7 * DAY * 1000)) {
    const week = isoWeek(moment);
    if (!weeks.includes(week)) weeks.push(week);
  }
  const last = isoWeek(end);
  if (!weeks.includes(last)) weeks.push(last);
  return weeks;
}
