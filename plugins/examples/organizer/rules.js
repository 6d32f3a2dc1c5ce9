// Checks that look at more than one answer, or at what an answer means for
// the return. Each rule gets `a` (the answers to questions that are shown,
// plus `today` and `taxYear`) and returns issues. A blocking issue stops
// Submit; the rest are warnings the client may leave as they are.
import { DEPENDENT_SLOTS, INCOME } from "./questions.js";
import { money, parseDate } from "./formats.js";

const warn = (field, message) => ({ field, message, blocking: false });
const block = (field, message) => ({ field, message, blocking: true });

function cents(a, id) {
  const v = a.value(id);
  return v && v.tag === "cents" && Number.isSafeInteger(v.val) ? v.val : null;
}

function files(a, id) {
  const v = a.value(id);
  return v && v.tag === "files" && Array.isArray(v.val) ? v.val.length : null;
}

function text(a, id) {
  const v = a.value(id);
  return v && v.tag === "text" && typeof v.val === "string" ? v.val.trim() : null;
}

const digits = (s) => (s || "").replace(/\D/g, "");

function dependentSlots(a) {
  const n = Math.min(Math.max(0, Math.floor(a.number("dependents.count")) || 0), DEPENDENT_SLOTS);
  return Array.from({ length: n }, (_, i) => `dep${i + 1}.`);
}

function birthDates(a) {
  const ids = ["about.birth-date", "spouse.birth-date", ...dependentSlots(a).map((p) => p + "birth-date")];
  const issues = [];
  for (const id of ids) {
    const d = parseDate(a.value(id)?.val);
    if (!d) continue;
    if (a.today && d.key > a.today.key) issues.push(block(id, "This birth date is in the future."));
    else if (d.y < 1900) issues.push(block(id, "Please check the year of this birth date."));
    else if (id.startsWith("dep") && d.y > a.taxYear) {
      issues.push(warn(id, `Born after ${a.taxYear}: this dependent can be claimed from next year's return.`));
    }
  }
  return issues;
}

function dependents(a) {
  const issues = [];
  const count = a.number("dependents.count");
  if (Number.isFinite(count) && (!Number.isInteger(count) || count < 1 || count > 30)) {
    issues.push(block("dependents.count", "Enter how many dependents, a whole number from 1 to 30."));
  }
  for (const p of dependentSlots(a)) {
    const months = a.number(p + "months");
    if (Number.isFinite(months) && (!Number.isInteger(months) || months < 0 || months > 12)) {
      issues.push(block(p + "months", "Months lived with you is a whole number from 0 to 12."));
    }
    const age = a.ageAtYearEnd(p + "birth-date");
    const student = a.flag(p + "student") === true;
    const disabled = a.flag(p + "disabled") === true;
    if (age >= 19 && !(student && age <= 23) && !disabled) {
      issues.push(warn(p + "birth-date", `${age} at the end of ${a.taxYear} and not a student: may count only as an "other dependent" if their income is low. Your preparer will check.`));
    }
  }
  return issues;
}

function uniqueSsns(a) {
  const ids = ["about.ssn", "spouse.ssn", ...dependentSlots(a).map((p) => p + "ssn")];
  const seen = new Map();
  const issues = [];
  for (const id of ids) {
    const ssn = digits(text(a, id));
    if (ssn.length !== 9) continue;
    if (seen.has(ssn)) issues.push(block(id, "This is the same number as another person's on this organizer."));
    else seen.set(ssn, id);
  }
  return issues;
}

function filingStatus(a) {
  const status = a.one("about.filing-status");
  const hasDependents = a.flag("dependents.have") === true;
  const issues = [];
  if ((status === "Head of household" || status === "Qualifying surviving spouse") && a.flag("dependents.have") === false) {
    issues.push(warn("about.filing-status", `${status} needs a qualifying person living with you; you said you have no dependents.`));
  }
  if (status === "Married filing jointly" && a.has("other.life-events", "Divorced or separated")) {
    issues.push(warn("about.filing-status", "You said you divorced or separated this year: a couple divorced by December 31 can't file jointly."));
  }
  const change = parseDate(a.value("about.marital-change-date")?.val);
  if (change && change.y !== a.taxYear) {
    issues.push(warn("about.marital-change-date", `That date is not in ${a.taxYear}.`));
  }
  if (hasDependents && a.one("about.filing-status") === "Single" && !a.flag("about.claimed-by-other")) {
    issues.push(warn("about.filing-status", "Single with dependents: Head of household may lower your tax. Your preparer will check."));
  }
  return issues;
}

function documentsMatchCounts(a) {
  const issues = [];
  const pairs = [
    ["income.w2-count", "income.w2", "W-2s"],
    ["income.brokerage-count", "income.1099-b", "brokerage accounts"],
  ];
  for (const [countId, uploadId, what] of pairs) {
    const count = a.number(countId);
    if (Number.isFinite(count) && (!Number.isInteger(count) || count < 1 || count > 99)) {
      issues.push(block(countId, "Enter a whole number from 1 to 99."));
      continue;
    }
    const got = files(a, uploadId);
    if (got !== null && count > got) {
      issues.push(warn(uploadId, `You said ${count} ${what} but uploaded ${got} file(s). Upload one for each, unless a file holds several.`));
    }
  }
  return issues;
}

function crypto(a) {
  if (a.flag("income.crypto-sold") !== true) return [];
  const report = a.value("income.crypto-report");
  if (report && report.tag === "na") return [];
  if (files(a, "income.crypto-report")) return [];
  return [warn("income.crypto-report", "You said you sold or traded digital assets but uploaded no 1099-DA or Form 8949. Without it your preparer needs every sale's date, cost and proceeds.")];
}

function amounts(a) {
  const issues = [];
  const gross = cents(a, "income.business-gross");
  const expenses = cents(a, "income.business-expenses");
  if (gross !== null && expenses !== null && expenses > gross) {
    issues.push(warn("income.business-expenses", `Expenses are more than receipts: a loss of ${money(expenses - gross)}. Please keep records of each expense.`));
  }
  const goods = cents(a, "ded.charity-goods");
  if (goods !== null && goods > 500000) {
    issues.push(warn("ded.charity-goods", "Gifts of goods over $5,000 need a qualified appraisal; please upload it."));
  } else if (goods !== null && goods > 50000) {
    issues.push(warn("ded.charity-goods", "Gifts of goods over $500 need Form 8283: list each item, the charity, the date and what you paid."));
  }
  const foreign = cents(a, "other.foreign-max");
  if (foreign !== null && foreign > 1000000) {
    issues.push(warn("other.foreign-max", "Over $10,000 in foreign accounts: you must also file an FBAR (FinCEN 114). Your preparer will help."));
  }
  const days = a.number("income.rental-personal-days");
  if (Number.isFinite(days) && days > 14) {
    issues.push(warn("income.rental-personal-days", "More than 14 days of personal use can limit the rental deductions."));
  }
  return issues;
}

// ABA routing numbers carry a checksum: 3-7-1 weights sum to a multiple of 10.
function bank(a) {
  const issues = [];
  const routing = text(a, "bank.routing");
  if (routing !== null && routing !== "") {
    const d = digits(routing);
    const sum = [...d].reduce((s, c, i) => s + Number(c) * [3, 7, 1][i % 3], 0);
    if (d.length !== 9 || d !== routing.replace(/[\s-]/g, "") || sum % 10 !== 0) {
      issues.push(block("bank.routing", "That is not a valid 9-digit routing number; please check it on a check or with your bank."));
    }
  }
  const account = text(a, "bank.account");
  if (account !== null && account !== "" && !/^[0-9-]{4,17}$/.test(account.replace(/\s/g, ""))) {
    issues.push(block("bank.account", "An account number has 4 to 17 digits."));
  }
  return issues;
}

function income(a) {
  const picked = a.value("income.sources");
  if (!picked || picked.tag !== "picked") return [];
  if (picked.val.includes(INCOME.social) && picked.val.length === 1 && a.flag("est.made") === true) {
    return [warn("est.made", "With Social Security as your only income you may be able to have tax withheld instead (Form W-4V).")];
  }
  return [];
}

export const fieldRules = [birthDates, dependents, uniqueSsns, filingStatus, documentsMatchCounts, crypto, amounts, bank, income];
