import { test } from "node:test";
import assert from "node:assert/strict";
import {
  load, ctx, text, cents, date, picked, refusal, fields, assertIds, visible, issuesFor, timed, memoryBytes, MEMORY_LIMIT,
} from "./helpers.mjs";

const { plugin, log } = await load("extension");
const settings = (over = {}) => {
  const base = {
    form: picked("form", "Form 4868 (individual)"),
    liability: cents("liability", 1234567),
    payments: cents("payments", 1000000),
    pay: cents("pay", 234567),
    due: date("due", "2026-10-15"),
    note: text("note", "We are waiting for a K-1."),
    ...over,
  };
  return Object.values(base).filter(Boolean);
};
const render = (answers, s = settings()) => plugin.render(ctx(), s, answers, []);

test("ids follow the contract", () => {
  assert.match(plugin.describe().id, /^[a-z0-9-]+$/);
  assertIds(plugin.settingsForm());
  assertIds(render([picked("decision", "Request changes")]).sections);
});

test("describes itself and the figures staff enter", () => {
  assert.equal(plugin.describe().id, "extension");
  const ids = plugin.settingsForm()[0].fields.map((f) => f.id);
  assert.deepEqual(ids, ["form", "liability", "payments", "pay", "due", "note"]);
});

test("check-settings validates the figures", () => {
  assert.deepEqual(plugin.checkSettings(settings()), []);
  const missing = plugin.checkSettings([]);
  for (const id of ["form", "liability", "payments", "pay", "due"]) {
    assert.ok(missing.some((i) => i.field === id && i.blocking), id);
  }
  const negative = plugin.checkSettings(settings({ payments: cents("payments", -1) }));
  assert.match(issuesFor(negative, "payments")[0].message, /negative/);
  const badDate = plugin.checkSettings(settings({ due: date("due", "2026-02-30") }));
  assert.ok(issuesFor(badDate, "due")[0].blocking);
  const odd = plugin.checkSettings(settings({ due: date("due", "2026-07-01") }));
  assert.ok(!issuesFor(odd, "due")[0].blocking && /October 15/.test(issuesFor(odd, "due")[0].message));
  const short = plugin.checkSettings(settings({ pay: cents("pay", 100000) }));
  const warn = issuesFor(short, "pay")[0];
  assert.ok(!warn.blocking && warn.message.includes("leaves $1,345.67"), warn.message);
  const covered = plugin.checkSettings(settings({ payments: cents("payments", 2000000) }));
  assert.match(issuesFor(covered, "pay")[0].message, /already cover/);
  const business = plugin.checkSettings(settings({ form: picked("form", "Form 7004 (business)"), due: date("due", "2026-09-15") }));
  assert.deepEqual(issuesFor(business, "due"), []);
});

test("the client sees the figures as statements, money formatted", () => {
  const view = render([]);
  const f = fields(view);
  assert.equal(f.get("figure.liability").kind, "statement");
  assert.equal(f.get("figure.liability").help, "$12,345.67");
  assert.equal(f.get("figure.payments").help, "$10,000.00");
  assert.equal(f.get("figure.balance").help, "$2,345.67");
  assert.equal(f.get("figure.pay").help, "$2,345.67");
  assert.equal(f.get("figure.due").help, "October 15, 2026");
  assert.match(f.get("figure.form").help, /^Form 4868 \(individual\): Application for Automatic Extension/);
  assert.equal(f.get("figure.note").help, "We are waiting for a K-1.");
  assert.match(view.sections[0].intro, /2025 return/);
  assert.ok(!visible(view).includes("comment"));
  assert.deepEqual([view.done, view.total], [0, 1]);
  assert.ok(log.some((l) => l.message.startsWith("rendered Form 4868 (individual): balance $2,345.67")));
});

test("the comment appears, and is required, only when asking for changes", () => {
  const approve = render([picked("decision", "Approve"), text("comment", "kept but hidden")]);
  assert.ok(!visible(approve).includes("comment"));
  assert.deepEqual([approve.done, approve.total], [1, 1]);
  const changes = render([picked("decision", "Request changes")]);
  const comment = fields(changes).get("comment");
  assert.ok(comment.visible && comment.required);
  assert.deepEqual([changes.done, changes.total], [1, 2]);
});

test("submit: approve completes, changes need a comment and carry it", () => {
  assert.ok(refusal(() => plugin.submit(ctx(), settings(), [])).some((i) => i.field === "decision"));
  const approved = plugin.submit(ctx(), settings(), [picked("decision", "Approve")]);
  assert.equal(approved.finish, "completed");
  assert.equal(approved.summary, "Approved Form 4868 (individual): pay $2,345.67 with the extension; new deadline October 15, 2026.");
  const noComment = refusal(() => plugin.submit(ctx(), settings(), [picked("decision", "Request changes")]));
  assert.ok(noComment.some((i) => i.field === "comment" && i.blocking));
  const changes = plugin.submit(ctx(), settings(), [
    picked("decision", "Request changes"),
    text("comment", "I paid $500 in June.\nPlease add it."),
  ]);
  assert.equal(changes.finish, "changes-requested");
  assert.equal(changes.summary, "Changes requested: I paid $500 in June. Please add it.");
  assert.equal(changes.notifyStaff, true);
});

test("a long comment is cut to one line at a character boundary", () => {
  const long = "\u00e9".repeat(400);
  const outcome = plugin.submit(ctx(), settings(), [picked("decision", "Request changes"), text("comment", long)]);
  assert.ok(outcome.summary.endsWith("\u00e9..."));
  assert.ok(Buffer.byteLength(outcome.summary) < 400);
});

test("odd input never traps", () => {
  assert.match(refusal(() => plugin.render(ctx(), [], [], [])), /incomplete/);
  const odd = [text("decision", "Approve"), cents("comment", 3), picked("decision", "Maybe")];
  const view = plugin.render(ctx({ taxYear: 0 }), settings(), odd, odd);
  assert.ok(issuesFor(view.issues, "decision")[0].blocking);
  assert.ok(refusal(() => plugin.submit(ctx(), settings(), odd)).length > 0);
  const incomplete = refusal(() => plugin.submit(ctx(), [], [picked("decision", "Approve")]));
  assert.equal(incomplete.length, 1);
  assert.match(incomplete[0].message, /incomplete \(Choose the form/);
  assert.ok(plugin.checkSettings([text("liability", "lots"), picked("form", "Form 1040")]).every((i) => i.blocking));
});

test("300 answers render well under 100 ms and 16 MiB", () => {
  const answers = Array.from({ length: 300 }, (_, i) => text(`x${i}`, "y".repeat(100)));
  answers.push(picked("decision", "Request changes"), text("comment", "z"));
  const ms = timed(() => render(answers));
  assert.ok(ms < 100, `${ms} ms`);
  assert.ok(memoryBytes() > 0 && memoryBytes() < MEMORY_LIMIT, `${memoryBytes()} bytes of memory`);
  console.log(`extension: ${ms.toFixed(2)} ms for 300 answers, ${memoryBytes()} bytes of memory`);
});
