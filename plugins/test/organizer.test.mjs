import { test } from "node:test";
import assert from "node:assert/strict";
import {
  load, ctx, text, num, cents, date, flag, picked, files, na,
  refusal, fields, assertIds, visible, issuesFor, timed, memoryBytes, MEMORY_LIMIT,
} from "./helpers.mjs";

const { plugin, log } = await load("organizer");
const FULL = [picked("questionnaire", "Full 1040 organizer")];
const SHORT = [picked("questionnaire", "Short organizer: income and changes only")];
const ALL_TOPICS = [
  ...FULL,
  picked("ask-about", "Digital assets (crypto)", "Rental property", "Foreign accounts", "Energy credits", "Education expenses"),
];

const render = (settings, answers, prior = []) => plugin.render(ctx(), settings, answers, prior);

test("ids follow the contract", () => {
  assert.match(plugin.describe().id, /^[a-z0-9-]+$/);
  assertIds(plugin.settingsForm());
  assertIds(render(ALL_TOPICS, []).sections);
});

test("describes itself and its settings", () => {
  assert.equal(plugin.describe().id, "organizer");
  const form = plugin.settingsForm();
  const ids = form.flatMap((s) => s.fields.map((f) => f.id));
  assert.deepEqual(ids, ["questionnaire", "ask-about", "note"]);
  assert.equal(form[0].fields[0].kind, "choice");
});

test("check-settings: a questionnaire is required, topics must be known", () => {
  assert.ok(plugin.checkSettings([]).some((i) => i.field === "questionnaire" && i.blocking));
  assert.deepEqual(plugin.checkSettings(ALL_TOPICS).filter((i) => i.blocking), []);
  const unknown = plugin.checkSettings([...FULL, picked("ask-about", "Yachts")]);
  assert.ok(unknown.some((i) => i.blocking && i.message.includes("Yachts")));
  const short = plugin.checkSettings([...SHORT, picked("ask-about", "Energy credits")]);
  assert.ok(short.some((i) => !i.blocking && i.message.includes("short organizer")));
  assert.ok(plugin.checkSettings([text("questionnaire", "Full 1040 organizer")]).some((i) => i.blocking));
});

test("the full organizer has over 40 questions and starts with the common ones", () => {
  const view = render(ALL_TOPICS, []);
  assert.ok(fields(view).size >= 40, `${fields(view).size} questions`);
  const shown = visible(view);
  assert.ok(shown.includes("about.filing-status"));
  assert.ok(!shown.includes("spouse.ssn"), "spouse hidden until married");
  assert.ok(!shown.includes("dep1.name"), "dependents hidden until there are some");
  assert.ok(!shown.includes("income.w2"), "W-2 upload hidden until wages are ticked");
  assert.equal(view.done, 0);
  assert.ok(view.total > 10);
  assert.ok(log.some((l) => /rendered \d+ of \d+ questions visible/.test(l.message)));
});

test("questions follow the answers: spouse, dependents, income sources", () => {
  const view = render(ALL_TOPICS, [
    picked("about.filing-status", "Married filing jointly"),
    flag("dependents.have", true),
    num("dependents.count", 2),
    date("dep1.birth-date", "2004-05-01"),
    date("dep2.birth-date", "2015-05-01"),
    picked("income.sources", "Wages (W-2)", "Digital assets (crypto)"),
    flag("income.crypto-sold", true),
  ]);
  const shown = visible(view);
  for (const id of ["spouse.ssn", "dep1.name", "dep2.name", "dep1.student", "income.w2", "income.crypto-report"]) {
    assert.ok(shown.includes(id), `${id} shown`);
  }
  for (const id of ["dep3.name", "dep2.student", "income.1099-b", "income.rental-rents"]) {
    assert.ok(!shown.includes(id), `${id} hidden`);
  }
  assert.ok(fields(view).get("income.sources").choices.includes("Digital assets (crypto)"));
});

test("topics staff leave out are not asked", () => {
  const view = render(FULL, [picked("income.sources", "Digital assets (crypto)"), flag("income.crypto-sold", true)]);
  assert.ok(!fields(view).get("income.sources").choices.includes("Digital assets (crypto)"));
  assert.ok(!visible(view).includes("income.crypto-sold"));
  assert.ok(!visible(view).includes("other.foreign"));
});

test("the short organizer asks about income and changes only", () => {
  const shown = visible(render(SHORT, [picked("about.filing-status", "Married filing jointly")]));
  assert.ok(shown.includes("income.sources") && shown.includes("about.filing-status"));
  assert.ok(!shown.includes("ded.mortgage") && !shown.includes("bank.routing") && !shown.includes("about.ssn"));
  assert.ok(!shown.includes("dependents.have"), "dependents are in the full organizer only");
  assert.ok(shown.includes("spouse.ssn") && !shown.includes("spouse.birth-date"));
});

test("validation: birth dates, SSNs, amounts, routing numbers", () => {
  const view = render(ALL_TOPICS, [
    date("about.birth-date", "2030-01-01"),
    text("about.ssn", "000-12-3456"),
    picked("about.filing-status", "Married filing jointly"),
    text("spouse.ssn", "123-45-6789"),
    flag("dependents.have", true),
    num("dependents.count", 1),
    text("dep1.ssn", "123456789"),
    num("dep1.months", 14),
    flag("ded.mortgage", true),
    cents("ded.property-tax", -500),
    flag("bank.direct", true),
    text("bank.routing", "123456789"),
  ]);
  const blocking = (id) => issuesFor(view.issues, id).filter((i) => i.blocking);
  assert.match(blocking("about.birth-date")[0].message, /future/);
  assert.match(blocking("about.ssn")[0].message, /123-45-6789/);
  assert.match(blocking("dep1.ssn")[0].message, /same number/);
  assert.match(blocking("dep1.months")[0].message, /0 to 12/);
  assert.match(blocking("ded.property-tax")[0].message, /zero or more/);
  assert.match(blocking("bank.routing")[0].message, /routing/);
  assert.equal(blocking("spouse.ssn").length, 0);
});

test("sold crypto without a 1099-DA or 8949 is a warning, not a block", () => {
  const answers = [picked("income.sources", "Digital assets (crypto)"), flag("income.crypto-sold", true)];
  const warning = issuesFor(render(ALL_TOPICS, answers).issues, "income.crypto-report");
  assert.equal(warning.length, 1);
  assert.equal(warning[0].blocking, false);
  assert.match(warning[0].message, /1099-DA/);
  const uploaded = render(ALL_TOPICS, [...answers, files("income.crypto-report", "8949.pdf")]);
  assert.equal(issuesFor(uploaded.issues, "income.crypto-report").length, 0);
});

test("last year's answers appear in the help, SSNs masked", () => {
  const view = render(FULL, [], [
    picked("about.filing-status", "Married filing jointly"),
    text("about.ssn", "123-45-6789"),
  ]);
  assert.match(fields(view).get("about.filing-status").help, /Last year: Married filing jointly/);
  const ssnHelp = fields(view).get("about.ssn").help;
  assert.match(ssnHelp, /\*\*\*-\*\*-6789/);
  assert.ok(!ssnHelp.includes("123-45"));
});

test("hidden answers are kept out of progress and checks", () => {
  const spouse = [text("spouse.ssn", "bad"), text("spouse.first-name", "Pat")];
  const single = render(FULL, [picked("about.filing-status", "Single"), ...spouse]);
  assert.equal(issuesFor(single.issues, "spouse.ssn").length, 0);
  const married = render(FULL, [picked("about.filing-status", "Married filing jointly"), ...spouse]);
  assert.equal(issuesFor(married.issues, "spouse.ssn").length, 1);
  assert.ok(married.total > single.total);
});

test("progress counts required visible answers, N/A included", () => {
  const before = render(FULL, []);
  const after = render(FULL, [picked("about.filing-status", "Single"), flag("about.marital-change", false), na("about.id", "no ID")]);
  assert.equal(after.done, before.done + 2, "about.id is not required; two required answers");
  assert.equal(after.total, before.total);
});

test("submit refuses gaps and completes with a one-line summary", () => {
  const issues = refusal(() => plugin.submit(ctx(), SHORT, []));
  assert.ok(issues.some((i) => i.field === "about.filing-status" && i.blocking));
  const answers = [
    picked("about.filing-status", "Married filing jointly"),
    flag("about.marital-change", false),
    flag("about.address-changed", false),
    text("spouse.first-name", "Pat"),
    text("spouse.last-name", "Doe"),
    text("spouse.ssn", "123-45-6789"),
    picked("income.sources", "Wages (W-2)", "Interest"),
    num("income.w2-count", 2),
    files("income.w2", "w2-a.pdf", "w2-b.pdf"),
    files("income.1099-int", "int.pdf"),
    flag("other.tax-letters", false),
  ];
  const outcome = plugin.submit(ctx(), SHORT, answers);
  assert.equal(outcome.finish, "completed");
  assert.equal(outcome.notifyStaff, true);
  assert.equal(outcome.summary, "Short organizer: Married filing jointly; dependents not asked; income: wages, interest.");
  assert.ok(!outcome.summary.includes("\n"));
});

// Answers every required question shown, as a client would, until none is left.
function fillIn(settings, seed) {
  const answers = [...seed];
  let ssn = 100;
  for (let round = 0; round < 10; round++) {
    const view = render(settings, answers);
    if (view.done === view.total) return answers;
    const have = new Set(answers.map((a) => a.field));
    for (const f of fields(view).values()) {
      if (!f.visible || !f.required || have.has(f.id)) continue;
      const byKind = {
        text: () => text(f.id, "Sam"),
        "long-text": () => text(f.id, "Main St 1"),
        ssn: () => text(f.id, `${ssn++}-45-6789`),
        ein: () => text(f.id, "12-3456789"),
        number: () => num(f.id, 1),
        money: () => cents(f.id, 10000),
        date: () => date(f.id, "2010-06-01"),
        "yes-no": () => flag(f.id, false),
        choice: () => picked(f.id, f.choices[0]),
        "multi-choice": () => picked(f.id, f.choices[0]),
        upload: () => files(f.id, "scan.pdf"),
      };
      answers.push(byKind[f.kind]());
    }
  }
  assert.fail("the organizer never reached 100%");
}

test("a full organizer answered throughout submits with its summary", () => {
  const seed = [
    picked("about.filing-status", "Married filing jointly"),
    flag("dependents.have", true),
    num("dependents.count", 1),
    picked("income.sources", "Wages (W-2)", "Self-employment or business"),
  ];
  const answers = fillIn(ALL_TOPICS, seed);
  const view = render(ALL_TOPICS, answers);
  assert.deepEqual(view.issues.filter((i) => i.blocking), []);
  const outcome = plugin.submit(ctx(), ALL_TOPICS, answers);
  assert.equal(outcome.summary, "Organizer: Married filing jointly; 1 dependent; income: wages, business.");
});

test("odd input never traps", () => {
  const odd = [
    num("about.filing-status", 3),
    text("dependents.count", "two"),
    cents("no.such.question", 5),
    na("about.filing-status", "x"),
    picked("about.filing-status", "Emperor"),
    text("about.notes", "x".repeat(20000)),
  ];
  const view = plugin.render(ctx({ today: "not a date", taxYear: 0 }), [num("questionnaire", 1)], odd, odd);
  assert.ok(view.issues.some((i) => i.field === "about.filing-status" && i.blocking));
  assert.ok(plugin.checkSettings([num("questionnaire", 1), flag("note", true)]).every((i) => i.blocking));
  const issues = refusal(() => plugin.submit(ctx(), [], odd));
  assert.ok(issues.length > 0);
});

test("300 answers render well under 100 ms and 16 MiB", () => {
  const answers = [picked("about.filing-status", "Married filing jointly"), flag("dependents.have", true), num("dependents.count", 6)];
  for (let i = 0; answers.length < 300; i++) answers.push(text(`extra.q${i}`, "x".repeat(100)));
  const ms = timed(() => render(ALL_TOPICS, answers, answers));
  assert.ok(ms < 100, `${ms} ms`);
  assert.ok(memoryBytes() > 0 && memoryBytes() < MEMORY_LIMIT, `${memoryBytes()} bytes of memory`);
  console.log(`organizer: ${ms.toFixed(2)} ms for 300 answers, ${memoryBytes()} bytes of memory`);
});
