// How the page writes domain values: worker pool ids, times, Taskcluster error messages.

/** The API's rule for workerPoolId (api.md §3.2): provisionerId/workerType. */
export const POOL_PATTERN = /^[A-Za-z0-9_-]{1,38}\/[A-Za-z0-9_-]{1,38}$/;
const ALLOWED = /[A-Za-z0-9_-]/;

function describe(character) {
  return character === " " ? "a space" : `"${character}"`;
}

function partProblem(name, part) {
  if (part.length === 0) return `The ${name} part is empty.`;
  if (part.length > 38) return `The ${name} part has ${part.length} characters; at most 38 are allowed.`;
  const bad = [...part].find((character) => !ALLOWED.test(character));
  if (bad) return `The ${name} part contains ${describe(bad)}; only letters, digits, "_" and "-" are allowed.`;
  return null;
}

/** Why `text` is not a worker pool id, in words, or null when the API would accept it. */
export function poolProblem(text) {
  if (POOL_PATTERN.test(text)) return null;
  if (text === "") return "Enter a worker pool ID such as proj-a/linux.";
  const parts = text.split("/");
  if (parts.length !== 2) {
    return `A worker pool ID has exactly one "/" (provisionerId/workerType); this has ${parts.length - 1}.`;
  }
  return partProblem("provisionerId", parts[0]) || partProblem("workerType", parts[1]);
}

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** An instant in the reader's time zone, e.g. "May 1, 2026, 2:03:04 PM". */
export function localTime(iso) {
  return LOCAL.format(new Date(iso));
}

const UNITS = [["day", 86400], ["h", 3600], ["min", 60], ["s", 1]];

/** How long ago an instant was, e.g. "3 min ago" ("in 2 min" when the clocks disagree). */
export function relativeTime(iso, now = Date.now()) {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  const size = Math.abs(seconds);
  if (size < 5) return "just now";
  const [unit, length] = UNITS.find(([, unitLength]) => size >= unitLength);
  const count = Math.floor(size / length);
  const label = unit === "day" ? `${count} ${count === 1 ? "day" : "days"}` : `${count} ${unit}`;
  return seconds > 0 ? `${label} ago` : `in ${label}`;
}

// `since` as a person types it: the twin of the CLI's (model.parse_typed_since and
// parse_duration); tests/data/since_cases.json holds both to one table. Times without an
// offset are UTC, as the service and the CLI read them.
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|z|[+-]\d{2}:?\d{2})?)?$/;
const JS_STRING = /^(?:[A-Za-z]{3}\s+)?([A-Za-z]{3})\s+(\d{1,2})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s+(?:GMT|UTC)([+-]\d{4})?(?:\s*\([^()]*\))?$/;
const RFC2822 = /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?(?:\s+(?:GMT|UTC?|([+-]\d{4})))?$/;
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DURATION = /\s*(\d+)\s*(ms|s|m|h|d|w)\s*/y;
const DURATION_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };
const DAY_MS = 86400000;

function offsetMinutes(zone) {
  if (!zone || zone === "Z" || zone === "z") return 0;
  const digits = zone.slice(1).replace(":", "");
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
  return zone[0] === "-" ? -minutes : minutes;
}

/** ms since the epoch of a UTC wall time, or null when there is no such date or time. */
function build(year, month, day, hour, minute, second, milli, zoneMinutes) {
  const endOfDay = hour === 24 && minute === 0 && second === 0 && milli === 0;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  const real = year >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  if (!real || (!endOfDay && (hour > 23 || minute > 59 || second > 59))) return null;
  return date.getTime() + (endOfDay ? DAY_MS : ((hour * 60 + minute) * 60 + second) * 1000) +
    milli - zoneMinutes * 60000;
}

function readIso(text) {
  const m = ISO.exec(text);
  if (!m) return null;
  const milli = Number((m[7] || "").slice(0, 3).padEnd(3, "0"));
  return build(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4] || 0), Number(m[5] || 0),
    Number(m[6] || 0), milli, offsetMinutes(m[8]));
}

function readNamedMonth(m, [month, day, year, hour, minute, second, zone]) {
  const index = m ? MONTHS.indexOf(m[month].toLowerCase()) : -1;
  if (index < 0) return null;
  return build(Number(m[year]), index + 1, Number(m[day]), Number(m[hour]), Number(m[minute]),
    Number(m[second] || 0), 0, offsetMinutes(m[zone]));
}

/** An age such as 2h, 1h30m or 3d in ms, or null (parse_duration's grammar). */
function readAge(text) {
  const value = text.trim().toLowerCase();
  let total = 0;
  DURATION.lastIndex = 0;
  while (DURATION.lastIndex < value.length) {
    const m = DURATION.exec(value);
    if (!m) return null;
    total += Number(m[1]) * DURATION_MS[m[2]];
  }
  return total > 0 ? total : null;
}

function sinceProblem(text) {
  if (/^\d+$/.test(text)) {
    return `“${text}” is a number without a unit: write an age such as ${text}h or ${text}d, ` +
      "or a date such as 2026-05-01.";
  }
  if (/^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$/.test(text)) {
    return `“${text}” could be read day first or month first: write the date as ` +
      "year-month-day, e.g. 2026-04-12.";
  }
  if (ISO.test(text)) return `There is no such date or time as “${text}”.`;
  return "Not a time this page reads: use ISO 8601 (2026-05-01T12:30:00Z, 2026-05-01 12:30, " +
    "2026-05-01; UTC unless you add an offset such as +02:00) or an age (2h, 30m, 3d).";
}

/**
 * A `since` typed by a person: {instant} (the ISO instant to send) or {problem} (why not, in
 * words). An age (`2h`) is that long before `now`.
 */
export function parseSince(text, now = Date.now()) {
  const value = text.trim();
  const age = readAge(value);
  const ms = age !== null ? now - age : [readIso(value),
    readNamedMonth(JS_STRING.exec(value), [1, 2, 3, 4, 5, 6, 7]),
    readNamedMonth(RFC2822.exec(value), [2, 1, 3, 4, 5, 6, 7])].find((read) => read !== null);
  if (ms === undefined || ms === null || ms === 0) return { problem: sinceProblem(value) };
  return { instant: new Date(ms).toISOString() };
}

/** A Taskcluster message split into prose and ``` fenced blocks: [{code: bool, text}]. */
export function messageBlocks(message) {
  const blocks = [];
  let code = false;
  let lines = [];
  const flush = () => {
    const text = lines.join("\n").trim();
    if (text) blocks.push({ code, text });
    lines = [];
  };
  for (const line of message.split("\n")) {
    if (line.trim() === "```") {
      flush();
      code = !code;
    } else {
      lines.push(line);
    }
  }
  flush();
  return blocks;
}

// Characters a reader cannot see or that reorder text: controls, format characters (zero-width,
// bidi embeddings, overrides and isolates), line and paragraph separators, and every space but
// U+0020.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Zs}]/u;
const NAMED = { "\n": "\\n", "\t": "\\t", "\r": "\\r" };


/**
 * A name as runs a reader can see: [{text}] for plain text and [{text, escape: true, code}] for
 * an invisible character (written as \n, \t or \u{200B}) or a space at either end (␣).
 * `layout` (for messages of several lines) keeps newlines and every U+0020 space as they are.
 */
export function visibleRuns(name, { layout = false } = {}) {
  const characters = [...name];
  const lead = layout ? 0 : characters.findIndex((c) => c !== " ");
  const start = lead < 0 ? characters.length : lead;
  const end = layout ? characters.length
    : characters.length - [...characters].reverse().findIndex((c) => c !== " ");
  const plain = layout ? [" ", "\n"] : [" "];
  const runs = [];
  characters.forEach((character, index) => {
    const edgeSpace = character === " " && (index < start || index >= end);
    if (edgeSpace || (!plain.includes(character) && INVISIBLE.test(character))) {
      const hex = character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const text = edgeSpace ? "␣" : NAMED[character] || `\\u{${hex}}`;
      runs.push({ text, escape: true, code: `U+${hex}` });
    } else if (runs.length && !runs[runs.length - 1].escape) {
      runs[runs.length - 1].text += character;
    } else {
      runs.push({ text: character });
    }
  });
  return runs;
}

// What JSON.stringify leaves raw although a reader cannot see it: format characters, C1
// controls, line and paragraph separators and spaces other than U+0020 (it escapes C0 itself).
const INVISIBLE_IN_JSON = /[\p{Cf}\p{Zl}\p{Zp}\u007F-\u009F]|(?! )\p{Zs}/gu;

/** `value` as indented JSON with every invisible character escaped (\u202e), still valid JSON
 * that parses to the same value. */
export function visibleJson(value) {
  return JSON.stringify(value, null, 2).replace(INVISIBLE_IN_JSON, (character) =>
    [...Array(character.length).keys()].map((index) =>
      `\\u${character.charCodeAt(index).toString(16).padStart(4, "0")}`).join(""));
}

/** The first `limit` characters of runs (from visibleRuns), whole escapes counting as one. */
export function truncateRuns(runs, limit) {
  const kept = [];
  let left = limit;
  for (const run of runs) {
    if (left <= 0) break;
    const characters = run.escape ? [run.text] : [...run.text];
    kept.push(run.escape ? run : { text: characters.slice(0, left).join("") });
    left -= run.escape ? 1 : characters.length;
  }
  return kept;
}

/** The name as plain text with its invisible characters written out (for labels). */
export function visibleName(name) {
  return name === "" ? "(empty name)" : visibleRuns(name).map((run) => run.text).join("");
}

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const ONE_DECIMAL = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/** A byte count in binary units, as `du -h` and `ls -lh` mean them: "0 B", "1.5 GiB". */
export function sizeText(bytes) {
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < SIZE_UNITS.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : ONE_DECIMAL.format(size)} ${SIZE_UNITS[unit]}`;
}
