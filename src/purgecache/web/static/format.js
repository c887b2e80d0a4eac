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

/**
 * A `since` typed by a person, as the ISO instant to send. Forms without an offset are local
 * time (a bare date too, unlike JavaScript's Date.parse, which takes that as UTC).
 */
export function parseSince(text) {
  const bareDate = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const instant = new Date(bareDate ? `${text}T00:00` : text);
  return Number.isNaN(instant.getTime()) ? null : instant.toISOString();
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
