import { test } from "node:test";
import assert from "node:assert/strict";
import {
  load, ctx, text, num, picked, files, na, reviewed,
  refusal, fields, assertIds, issuesFor, timed, memoryBytes, MEMORY_LIMIT,
} from "./helpers.mjs";

const { plugin, log } = await load("gather");
const docs = (...xs) => picked("documents", ...xs);
const custom = (lines) => text("custom", lines);
const SETTINGS = [
  docs("W-2 (wages)", "K-1 (partnership, S corporation, trust)", "Prior-year tax return", "Photo ID (driver's license)", "1099-B (brokerage sales)"),
  custom("1099-INT from Bank X\n!Closing statement for the house sale | from the title company\n\n"),
];
const render = (answers, prior = [], settings = SETTINGS) => plugin.render(ctx(), settings, answers, prior);

test("ids follow the contract", () => {
  assert.match(plugin.describe().id, /^[a-z0-9-]+$/);
  assertIds(plugin.settingsForm());
  assertIds(render([]).sections);
});

test("describes itself; settings offer the catalogue, custom lines and a note", () => {
  assert.equal(plugin.describe().id, "gather");
  const form = plugin.settingsForm();
  const [documents, customField, note] = form[0].fields;
  assert.equal(documents.kind, "multi-choice");
  assert.ok(documents.choices.includes("1098-T (tuition)") && documents.choices.length >= 12);
  assert.equal(customField.kind, "long-text");
  assert.match(customField.help, /Start a line with !/);
  assert.equal(note.id, "note");
});

test("check-settings: something to request, known documents, sane lines", () => {
  assert.ok(plugin.checkSettings([]).some((i) => i.blocking && i.field === "documents"));
  assert.deepEqual(plugin.checkSettings(SETTINGS).filter((i) => i.blocking), []);
  assert.ok(plugin.checkSettings([docs("Form 9999")]).some((i) => i.blocking && i.message.includes("Form 9999")));
  const long = plugin.checkSettings([custom(`ok\n${"x".repeat(200)}`)]);
  assert.ok(long.some((i) => i.blocking && /line 2/.test(i.message)));
  const twice = plugin.checkSettings([custom("Bank X 1099\nbank x 1099")]);
  assert.ok(twice.some((i) => !i.blocking && /repeats/.test(i.message)));
  const many = Array.from({ length: 130 }, (_, i) => `Item ${i}`).join("\n");
  assert.ok(plugin.checkSettings([custom(many)]).some((i) => i.blocking && /At most 120/.test(i.message)));
  const full = Array.from({ length: 110 }, (_, i) => `Item ${i}`).join("\n");
  assert.deepEqual(plugin.checkSettings([docs("W-2 (wages)", "1098-T (tuition)"), custom(full)]), []);
  assert.equal(fields(render([], [], [docs("W-2 (wages)"), custom(full)])).size, 111);
  assert.ok(plugin.checkSettings([num("custom", 3)]).some((i) => i.blocking));
});

test("each item is a reviewed upload; ! makes it required; a hint becomes help", () => {
  const view = render([]);
  const f = fields(view);
  assert.equal(f.size, 7);
  for (const field of f.values()) {
    assert.equal(field.kind, "upload");
    assert.ok(field.reviewed && field.required && field.visible);
    assert.ok(field.accept);
  }
  assert.equal(f.get("doc.id").allowNa, false);
  assert.equal(f.get("doc.k-1").allowNa, true);
  assert.equal(f.get("doc.prior-return").accept, ".pdf");
  assert.equal(f.get("custom.1099-int-from-bank-x").allowNa, true);
  const closing = f.get("custom.closing-statement-for-the-house-sale");
  assert.equal(closing.allowNa, false);
  assert.equal(closing.help, "from the title company");
  assert.deepEqual([view.done, view.total], [0, 7]);
});

test("custom items keep their answers when staff reorder the lines", () => {
  const a = fields(render([], [], [custom("A from X\nB from Y")]));
  const b = fields(render([], [], [custom("B from Y\nA from X")]));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
});

test("progress counts accepted and N/A items; returned ones need replacing", () => {
  const view = render([
    reviewed(files("doc.w2", "w2.pdf"), "accepted"),
    na("doc.k-1", "No partnerships this year"),
    reviewed(files("doc.1099-b", "b.pdf"), "returned"),
    files("custom.1099-int-from-bank-x", "int.pdf"),
  ]);
  assert.deepEqual([view.done, view.total], [2, 7]);
  const returned = issuesFor(view.issues, "doc.1099-b");
  assert.ok(returned[0].blocking && /returned/.test(returned[0].message));
  assert.ok(log.some((l) => /rendered 7 item\(s\): 1 accepted, 1 not applicable, 1 to review, 1 returned, 3 missing/.test(l.message)));
});

test("per-item rules", () => {
  const view = render([
    files("doc.id", "front.jpg"),
    files("doc.prior-return", "page1.jpg", "page2.jpg"),
    files("doc.w2", "paystub-december.pdf"),
    files("doc.1099-b", "gains.csv"),
    na("doc.k-1", "not received yet"),
    files("custom.1099-int-from-bank-x", "statement.docx"),
    na("custom.closing-statement-for-the-house-sale", "lost it"),
  ]);
  const one = (id) => issuesFor(view.issues, id);
  assert.match(one("doc.id")[0].message, /front and the back/);
  assert.match(one("doc.prior-return")[0].message, /PDF/);
  assert.equal(one("doc.prior-return")[0].blocking, false);
  assert.match(one("doc.w2")[0].message, /pay stub/);
  assert.match(one("doc.1099-b")[0].message, /spreadsheet/);
  assert.match(one("doc.k-1")[0].message, /extension/);
  assert.ok(one("custom.1099-int-from-bank-x")[0].blocking);
  assert.match(one("custom.1099-int-from-bank-x")[0].message, /statement\.docx/);
  assert.ok(one("custom.closing-statement-for-the-house-sale")[0].blocking);
  const idOk = render([files("doc.id", "front.jpg", "back.jpg")]);
  assert.equal(issuesFor(idOk.issues, "doc.id").length, 0);
  const idBad = render([files("doc.id", "license.zip")]);
  assert.ok(issuesFor(idBad.issues, "doc.id")[0].blocking);
  const accepted = render([reviewed(files("doc.id", "license.zip"), "accepted")]);
  assert.equal(issuesFor(accepted.issues, "doc.id").length, 0, "staff accepted it");
});

test("last year's files: shown in help, fewer this year is a warning", () => {
  const prior = [files("doc.1099-b", "a.pdf", "b.pdf", "c.pdf")];
  const view = render([files("doc.1099-b", "a.pdf")], prior);
  assert.match(fields(view).get("doc.1099-b").help, /Last year you sent 3 files/);
  const warning = issuesFor(view.issues, "doc.1099-b");
  assert.equal(warning.length, 1);
  assert.equal(warning[0].blocking, false);
});

test("submit: gaps block; otherwise awaiting review, or completed when all is settled", () => {
  const gaps = refusal(() => plugin.submit(ctx(), SETTINGS, [files("doc.w2", "w2.pdf")]));
  assert.ok(gaps.some((i) => i.field === "doc.id" && i.blocking));
  const sent = [
    files("doc.w2", "w2.pdf"),
    na("doc.k-1", "no partnerships"),
    files("doc.prior-return", "2024.pdf"),
    files("doc.id", "front.jpg", "back.jpg"),
    files("doc.1099-b", "b.pdf"),
    files("custom.1099-int-from-bank-x", "int.pdf"),
    files("custom.closing-statement-for-the-house-sale", "closing.pdf"),
  ];
  const waiting = plugin.submit(ctx(), SETTINGS, sent);
  assert.equal(waiting.finish, "awaiting-review");
  assert.match(waiting.summary, /7 document\(s\) sent: 0 accepted, 1 not applicable, 6 to review/);
  const accepted = sent.map((a) => (a.value.tag === "files" ? reviewed(a, "accepted") : a));
  const done = plugin.submit(ctx(), SETTINGS, accepted);
  assert.equal(done.finish, "completed");
  assert.equal(done.notifyStaff, true);
});

test("odd input never traps", () => {
  const odd = [text("doc.w2", "w2"), num("doc.id", 1), files("no.such.item", "x.pdf"), na("doc.id", "")];
  const view = plugin.render(ctx({ today: "?" }), [docs("W-2 (wages)", "Photo ID (driver's license)"), num("note", 1)], odd, odd);
  assert.ok(issuesFor(view.issues, "doc.w2")[0].blocking);
  assert.ok(issuesFor(view.issues, "doc.id")[0].blocking);
  assert.match(refusal(() => plugin.render(ctx(), [], [], [])), /no documents/);
  assert.ok(refusal(() => plugin.submit(ctx(), [], [])).length > 0);
  const weird = plugin.checkSettings([custom("!\n|\n!|x\n\u00e9\u00e9\u00e9\n\u00e9\u00e9\u00e9")]);
  assert.ok(weird.some((i) => i.blocking && /no name/.test(i.message)));
  const accents = [...fields(render([], [], [custom("\u00e9\u00e9\u00e9\n\u00e9\u00e9\u00e9")])).keys()];
  assert.equal(accents.length, 2);
  assert.match(accents[0], /^custom\.item-[0-9a-f]{8}$/);
  assert.equal(accents[1], `${accents[0]}-2`);
});

test("300 answers render well under 100 ms and 16 MiB", () => {
  const lines = Array.from({ length: 100 }, (_, i) => `Statement ${i} from Bank ${i}`).join("\n");
  const settings = [docs("W-2 (wages)", "1099-B (brokerage sales)"), custom(lines)];
  const answers = [];
  for (let i = 0; answers.length < 300; i++) answers.push(files(`custom.statement-${i % 100}-from-bank-${i % 100}`, `s${i}.pdf`));
  const ms = timed(() => plugin.render(ctx(), settings, answers, answers));
  assert.ok(ms < 100, `${ms} ms`);
  assert.ok(memoryBytes() > 0 && memoryBytes() < MEMORY_LIMIT, `${memoryBytes()} bytes of memory`);
  console.log(`gather: ${ms.toFixed(2)} ms for 300 answers, ${memoryBytes()} bytes of memory`);
});
