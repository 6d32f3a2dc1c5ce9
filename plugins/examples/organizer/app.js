// Organizer: a 1040 tax organizer as a Portal task type (portal:task@0.1.0).
// The questions are data (questions.js); this file resolves which are shown,
// checks the answers, counts progress and builds the summary. Every export is
// a pure function of its arguments: the host calls it in a fresh sandbox.
import log from "portal:task/log@0.1.0";
import {
  SECTIONS,
  QUESTIONNAIRES,
  TOPICS,
  FILING_STATUSES,
  INCOME,
} from "./questions.js";
import { fieldRules } from "./rules.js";
import { money, parseDate, validEin, validSsn } from "./formats.js";

const INFO = {
  id: "organizer",
  name: "Tax organizer",
  version: "1.0.0",
  summary:
    "A 1040 organizer: filing status, dependents, income, deductions and credits, with questions that follow the client's answers.",
};

// The answer variant each kind of question takes.
const TAG = {
  text: "text",
  "long-text": "text",
  ssn: "text",
  ein: "text",
  number: "number",
  money: "cents",
  date: "date",
  "yes-no": "flag",
  choice: "picked",
  "multi-choice": "picked",
  upload: "files",
};

const MAX_TEXT = 5000;

// ---------------------------------------------------------------- settings

function settingsForm() {
  return [
    {
      id: "organizer",
      title: "Organizer",
      intro: null,
      fields: [
        wit({
          id: "questionnaire",
          kind: "choice",
          label: "Questionnaire",
          req: true,
          choices: QUESTIONNAIRES,
          help: "The short organizer asks about income and changes since last year only.",
        }),
        wit({
          id: "ask-about",
          kind: "multi-choice",
          label: "Also ask about",
          choices: Object.values(TOPICS),
          help: "Topics only some clients have. Unticked topics are left out.",
        }),
        wit({
          id: "note",
          kind: "long-text",
          label: "Note to the client",
          help: "Shown at the top of the organizer.",
        }),
      ],
    },
  ];
}

// Reads staff settings; `problems` says what is wrong with them. Render works
// with whatever is usable (a missing questionnaire means the full one).
function readSettings(list) {
  const problems = [];
  const byId = answerMap(list, problems, "settings");
  const settings = { short: false, topics: new Set(), note: null, problems };
  const which = byId.get("questionnaire");
  if (!which) {
    problems.push(issue("questionnaire", "Choose which questionnaire to send.", true));
  } else if (which.tag !== "picked" || which.val.length !== 1 || !QUESTIONNAIRES.includes(which.val[0])) {
    problems.push(issue("questionnaire", `Questionnaire must be one of: ${QUESTIONNAIRES.join("; ")}.`, true));
  } else {
    settings.short = which.val[0] === QUESTIONNAIRES[1];
  }
  const topics = byId.get("ask-about");
  if (topics && topics.tag !== "picked") {
    problems.push(issue("ask-about", "\"Also ask about\" must be a list of topics.", true));
  } else if (topics) {
    for (const label of topics.val) {
      const key = Object.keys(TOPICS).find((k) => TOPICS[k] === label);
      if (key) settings.topics.add(key);
      else problems.push(issue("ask-about", `Unknown topic "${label}".`, true));
    }
  }
  const note = byId.get("note");
  if (note && (note.tag !== "text" || note.val.length > MAX_TEXT)) {
    problems.push(issue("note", `The note must be text of at most ${MAX_TEXT} characters.`, true));
  } else if (note && note.val.trim()) {
    settings.note = note.val.trim();
  }
  return settings;
}

function checkSettings(list) {
  const settings = readSettings(list);
  const issues = [...settings.problems];
  if (settings.short) {
    for (const key of settings.topics) {
      if (!topicInShort(key)) {
        issues.push(issue("ask-about", `The short organizer has no questions about ${TOPICS[key]}; choose the full organizer to ask about it.`, false));
      }
    }
  }
  log.write("info", `checked settings: ${issues.length} issue(s)`);
  return issues;
}

function topicInShort(key) {
  return SECTIONS.some(
    (s) => !s.full && s.fields.some((f) => !f.full && f.topic === key),
  ) || key in INCOME;
}

// ---------------------------------------------------------------- answers

// Answer values by field id (the organizer has no reviewed fields). Entries
// that are not answer records are skipped and reported; a later answer to the
// same field wins.
function answerMap(list, problems, what) {
  const map = new Map();
  let bad = 0;
  for (const a of Array.isArray(list) ? list : []) {
    if (!a || typeof a.field !== "string" || !a.value || typeof a.value.tag !== "string") {
      bad++;
      continue;
    }
    map.set(a.field, a.value);
  }
  if (bad) problems.push(issue(null, `${bad} ${what} entries could not be read and were ignored.`, false));
  return map;
}

// What a `when` function sees: only the answers to questions already shown.
function reader(shown, settings, taxYear) {
  const get = (id, tag) => {
    const v = shown.get(id);
    return v && v.tag === tag ? v.val : null;
  };
  return {
    flag: (id) => get(id, "flag"),
    number: (id) => {
      const n = get(id, "number");
      return typeof n === "number" ? n : NaN;
    },
    one: (id) => (get(id, "picked") || [])[0] ?? null,
    has: (id, choice) => (get(id, "picked") || []).includes(choice),
    topic: (key) => settings.topics.has(key),
    ageAtYearEnd: (id) => {
      const d = parseDate(get(id, "date"));
      return d ? taxYear - d.y : NaN;
    },
  };
}

// Is the value an answer to the field? `wrong` explains a value of the wrong
// form (which does not count as an answer). The verdicts are shared constants:
// a render judges every question, and allocating costs more than judging.
const UNANSWERED = Object.freeze({ answered: false });
const ANSWERED = Object.freeze({ answered: true });
const NOT_APPLICABLE = Object.freeze({ answered: true, na: true });
const NA_REFUSED = Object.freeze({
  answered: false,
  wrong: "This question can't be marked not applicable; please answer it.",
});
const WRONG_FORM = Object.freeze({
  answered: false,
  wrong: "This answer is not in the form the question needs; please answer it again.",
});

function judge(field, v) {
  if (!v) return UNANSWERED;
  if (v.tag === "na") return field.na ? NOT_APPLICABLE : NA_REFUSED;
  if (v.tag !== TAG[field.kind]) return WRONG_FORM;
  switch (v.tag) {
    case "text":
      return typeof v.val === "string" && v.val.trim() !== "" ? ANSWERED : UNANSWERED;
    case "picked":
    case "files":
      return Array.isArray(v.val) && v.val.length > 0 ? ANSWERED : UNANSWERED;
    case "number":
      return Number.isFinite(v.val) ? ANSWERED : UNANSWERED;
    default:
      return v.val !== null && v.val !== undefined ? ANSWERED : UNANSWERED;
  }
}

// ---------------------------------------------------------------- resolving

// Every question in order. A render keeps what it works out per question in
// arrays indexed like this one: an object per question costs more than the
// rest of resolving it.
const QUESTIONS = SECTIONS.flatMap((s) => s.fields);

// Walks the questionnaire in order, deciding what is shown for these answers:
// per question whether it is `visible`, its value and its `verdict` (judge).
function resolve(settings, answers, taxYear) {
  const shown = new Map();
  const a = reader(shown, settings, taxYear);
  const visible = [];
  const values = [];
  const verdicts = [];
  let i = 0;
  let known = 0;
  for (const s of SECTIONS) {
    const sectionShown = !(settings.short && s.full) && (!s.when || s.when(a));
    for (const f of s.fields) {
      const shows =
        sectionShown &&
        !(settings.short && f.full) &&
        (!f.topic || settings.topics.has(f.topic)) &&
        (!f.when || f.when(a));
      const value = answers.get(f.id);
      if (value) known++;
      if (shows && value) shown.set(f.id, value);
      visible[i] = shows;
      values[i] = value;
      verdicts[i] = judge(f, value);
      i++;
    }
  }
  return { visible, values, verdicts, shown, a, unknown: answers.size - known };
}

function progress(resolved) {
  let done = 0;
  let total = 0;
  let visible = 0;
  for (let i = 0; i < QUESTIONS.length; i++) {
    if (!resolved.visible[i]) continue;
    visible++;
    if (!QUESTIONS[i].req) continue;
    total++;
    if (resolved.verdicts[i].answered) done++;
  }
  return { done, total, visible, all: QUESTIONS.length };
}

function validate(resolved, c) {
  const issues = [];
  const { visible, values, verdicts } = resolved;
  for (let i = 0; i < QUESTIONS.length; i++) {
    if (!visible[i] || !values[i]) continue;
    const verdict = verdicts[i];
    if (verdict.wrong) issues.push(issue(QUESTIONS[i].id, verdict.wrong, true));
    else if (verdict.answered && !verdict.na) issues.push(...checkValue(QUESTIONS[i], values[i], resolved.settings));
  }
  const ctx = { ...resolved.a, value: (id) => resolved.shown.get(id), today: parseDate(c.today), taxYear: c.taxYear };
  for (const rule of fieldRules) issues.push(...rule(ctx));
  return issues;
}

// Checks that hold for every question of a kind.
function checkValue(q, v, settings) {
  const bad = (message) => [issue(q.id, message, true)];
  switch (q.kind) {
    case "ssn":
      return validSsn(v.val) ? [] : bad("Enter a Social Security number as 123-45-6789.");
    case "ein":
      return validEin(v.val) ? [] : bad("Enter an EIN as 12-3456789.");
    case "money":
      if (!Number.isSafeInteger(v.val)) return bad("Enter an amount in dollars and cents.");
      return v.val < 0 ? bad("Enter an amount of zero or more.") : [];
    case "number":
      return v.val < 0 ? bad("Enter a number of zero or more.") : [];
    case "date":
      return parseDate(v.val) ? [] : bad("Enter a date as YYYY-MM-DD.");
    case "choice":
    case "multi-choice": {
      const offered = choicesOf(q, settings);
      if (q.kind === "choice" && v.val.length > 1) return bad("Pick only one answer.");
      return v.val.every((p) => offered.includes(p)) ? [] : bad("Pick one of the offered answers.");
    }
    default:
      return v.tag === "text" && v.val.length > MAX_TEXT
        ? bad(`Please keep this under ${MAX_TEXT} characters; add a note for more.`)
        : [];
  }
}

// ---------------------------------------------------------------- view

function choicesOf(q, settings) {
  if (typeof q.choices === "function") return q.choices({ topic: (k) => settings.topics.has(k) });
  return q.choices || [];
}

function wit(q, visible = true, help = q.help ?? null, settings = { topics: new Set() }) {
  return {
    id: q.id,
    label: q.label,
    help,
    kind: q.kind,
    choices: choicesOf(q, settings),
    required: !!q.req,
    allowNa: !!q.na,
    visible,
    reviewed: false,
    accept: q.accept ?? null,
  };
}

// "Last year: ..." for a prior-year answer; SSNs show only their last four.
function priorText(q, v) {
  if (!v || typeof v.tag !== "string") return null;
  switch (v.tag) {
    case "text":
      if (typeof v.val !== "string" || !v.val.trim()) return null;
      return q.kind === "ssn" ? `***-**-${v.val.replace(/\D/g, "").slice(-4)}` : v.val.trim();
    case "cents":
      return Number.isSafeInteger(v.val) ? money(v.val) : null;
    case "flag":
      return v.val ? "Yes" : "No";
    case "picked":
      return Array.isArray(v.val) && v.val.length ? v.val.join(", ") : null;
    case "files":
      return Array.isArray(v.val) && v.val.length ? `${v.val.length} file(s) uploaded` : null;
    case "na":
      return "Not applicable";
    case "number":
    case "date":
      return String(v.val);
    default:
      return null;
  }
}

function help(q, priorValue) {
  const last = priorText(q, priorValue);
  const parts = [q.help, last && `Last year: ${last}`].filter(Boolean);
  return parts.length ? parts.join(" ") : null;
}

// The field records, built once when the module is initialised: that happens
// at build time, so every call starts with them in its (fresh) memory and only
// sets what depends on the answers. Saves a third of a render.
const RECORDS = QUESTIONS.map((q) => wit(q));

// Questions whose choices depend on the settings.
const CHOICES_BY_SETTINGS = QUESTIONS.flatMap((q, i) => (typeof q.choices === "function" ? [i] : []));

// Help is the question's own, as built, plus "Last year: ..." where there is a
// prior-year answer. The records are rewritten only when this call or an
// earlier one in the same instance has prior answers: the host's instances
// are fresh per call, but the Node tests keep one.
let priorHelpSet = false;
function setHelp(prior) {
  if (!prior.size && !priorHelpSet) return;
  priorHelpSet = prior.size > 0;
  QUESTIONS.forEach((q, i) => {
    const last = prior.get(q.id);
    RECORDS[i].help = last ? help(q, last) : q.help ?? null;
  });
}

function view(resolved, settings, prior) {
  setHelp(prior);
  for (const i of CHOICES_BY_SETTINGS) RECORDS[i].choices = choicesOf(QUESTIONS[i], settings);
  let i = 0;
  return SECTIONS.map((s, n) => ({
    id: s.id,
    title: s.title,
    intro: n === 0 && settings.note ? `A note from your preparer: ${settings.note}` : s.intro ?? null,
    fields: s.fields.map(() => {
      const record = RECORDS[i];
      record.visible = resolved.visible[i++];
      return record;
    }),
  }));
}

// ---------------------------------------------------------------- exports

function evaluate(c, settingsList, answerList) {
  const settings = readSettings(settingsList);
  const problems = [];
  const answers = answerMap(answerList, problems, "answer");
  // The host always passes the tax year; 0 only keeps odd input from trapping.
  const taxYear = Number.isInteger(c?.taxYear) ? c.taxYear : 0;
  const resolved = resolve(settings, answers, taxYear);
  resolved.settings = settings;
  const issues = [...problems, ...validate(resolved, c ?? {})];
  return { settings, resolved, issues, progress: progress(resolved) };
}

function render(c, settingsList, answerList, priorList) {
  const { settings, resolved, issues, progress: p } = evaluate(c, settingsList, answerList);
  const prior = answerMap(priorList, [], "prior");
  log.write("info", `rendered ${p.visible} of ${p.all} questions visible; ${p.done} of ${p.total} required answered; ${issues.length} issue(s)`);
  if (resolved.unknown) log.write("debug", `kept ${resolved.unknown} answer(s) to questions this version does not ask`);
  return { sections: view(resolved, settings, prior), done: p.done, total: p.total, issues };
}

function submit(c, settingsList, answerList) {
  const { resolved, issues } = evaluate(c, settingsList, answerList);
  const blocking = issues.filter((i) => i.blocking);
  const { visible, verdicts } = resolved;
  for (let i = 0; i < QUESTIONS.length; i++) {
    const q = QUESTIONS[i];
    if (visible[i] && q.req && !verdicts[i].answered && !verdicts[i].wrong) {
      blocking.push(issue(q.id, `Please answer: ${q.label}`, true));
    }
  }
  if (blocking.length) {
    log.write("info", `submit refused: ${blocking.length} blocking issue(s)`);
    throw blocking;
  }
  const outcome = { summary: summary(resolved), finish: "completed", notifyStaff: true };
  log.write("info", `submitted: ${outcome.summary}`);
  return outcome;
}

function summary({ a, settings }) {
  const status = FILING_STATUSES.includes(a.one("about.filing-status")) ? a.one("about.filing-status") : "filing status not given";
  const count = a.flag("dependents.have") ? a.number("dependents.count") : 0;
  const deps = settings.short
    ? "dependents not asked"
    : count === 1 ? "1 dependent" : `${Number.isFinite(count) ? count : 0} dependents`;
  const sources = Object.entries(INCOME)
    .filter(([, label]) => a.has("income.sources", label))
    .map(([key]) => key);
  const income = sources.length ? `income: ${sources.join(", ")}` : "no income sources ticked";
  const kind = settings.short ? "Short organizer" : "Organizer";
  return `${kind}: ${status}; ${deps}; ${income}.`;
}

function issue(field, message, blocking) {
  return { field, message, blocking };
}

// Never trap: an unexpected error becomes the call's own error result (or a
// blocking issue where the contract has no error result).
function guarded(name, fn, onError) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (e) {
      if (Array.isArray(e)) throw e;
      log.write("error", `${name} failed: ${e && e.message ? e.message : e}`);
      return onError(e);
    }
  };
}

const failed = (name) => (e) => {
  throw name === "submit"
    ? [issue(null, "The organizer could not check these answers. Please tell your preparer.", true)]
    : `The organizer could not be shown: ${e && e.message ? e.message : e}`;
};

export const taskType = {
  describe: () => INFO,
  settingsForm: guarded("settings-form", settingsForm, () => []),
  checkSettings: guarded("check-settings", checkSettings, (e) => [
    issue(null, `The organizer could not check these settings: ${e && e.message ? e.message : e}`, true),
  ]),
  render: guarded("render", render, failed("render")),
  submit: guarded("submit", submit, failed("submit")),
};
