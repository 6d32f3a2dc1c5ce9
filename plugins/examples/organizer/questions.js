// The 1040 organizer's questions, as data. Each section and question may have
// `when(a)`: it is shown only when that returns true for the answers so far
// (`a` only sees answers to questions that are themselves shown, so hiding a
// question hides everything that depends on it). `full: true` marks what the
// short organizer leaves out; `topic` marks what staff opt into with "Ask
// about".

export const QUESTIONNAIRES = [
  "Full 1040 organizer",
  "Short organizer: income and changes only",
];

export const TOPICS = {
  crypto: "Digital assets (crypto)",
  rental: "Rental property",
  foreign: "Foreign accounts",
  energy: "Energy credits",
  education: "Education expenses",
};

export const FILING_STATUSES = [
  "Single",
  "Married filing jointly",
  "Married filing separately",
  "Head of household",
  "Qualifying surviving spouse",
];

export const INCOME = {
  wages: "Wages (W-2)",
  interest: "Interest",
  dividends: "Dividends",
  brokerage: "Brokerage sales (stocks, funds, bonds)",
  business: "Self-employment or business",
  rental: "Rental property",
  retirement: "Retirement: pension, IRA or 401(k)",
  social: "Social Security",
  unemployment: "Unemployment",
  crypto: "Digital assets (crypto)",
  other: "Other income",
};

export const LIFE_EVENTS = [
  "Married",
  "Divorced or separated",
  "Had or adopted a child",
  "Bought a home",
  "Sold a home",
  "Started a business",
  "Moved to another state",
  "Death in the family",
  "Lost a job",
  "Retired",
];

// Dependents get this many slots of questions; more are listed in a note.
export const DEPENDENT_SLOTS = 6;

const DOCS = "image/*,.pdf";
const RELATIONSHIPS = [
  "Son",
  "Daughter",
  "Stepchild",
  "Foster child",
  "Grandchild",
  "Brother or sister",
  "Parent",
  "Other relative",
];

// Question shorthands: q(id, kind, label, options).
const q = (id, kind, label, o = {}) => ({ id, kind, label, ...o });
const married = (a) =>
  ["Married filing jointly", "Married filing separately"].includes(
    a.one("about.filing-status"),
  );
const yes = (id) => (a) => a.flag(id) === true;
const earns = (source) => (a) =>
  (!(source in TOPICS) || a.topic(source)) && a.has("income.sources", INCOME[source]);
const upload = (id, label, o = {}) =>
  q(id, "upload", label, { accept: DOCS, ...o });

function dependentQuestions(n) {
  const p = `dep${n}.`;
  const shown = (a) => a.number("dependents.count") >= n;
  const age = (a) => a.ageAtYearEnd(p + "birth-date");
  return [
    q(p + "name", "text", `Dependent ${n}: full name`, { req: true, when: shown }),
    q(p + "relationship", "choice", `Dependent ${n}: relationship to you`, {
      req: true,
      choices: RELATIONSHIPS,
      when: shown,
    }),
    q(p + "birth-date", "date", `Dependent ${n}: date of birth`, { req: true, when: shown }),
    q(p + "ssn", "ssn", `Dependent ${n}: Social Security number`, { req: true, when: shown }),
    q(p + "months", "number", `Dependent ${n}: months lived with you`, {
      req: true,
      help: "0 to 12. A child born during the year counts the whole year.",
      when: shown,
    }),
    q(p + "student", "yes-no", `Dependent ${n}: full-time student for 5 months or more?`, {
      req: true,
      when: (a) => shown(a) && age(a) >= 19 && age(a) <= 23,
    }),
    q(p + "disabled", "yes-no", `Dependent ${n}: permanently and totally disabled?`, {
      when: shown,
    }),
  ];
}

const dependents = [];
for (let n = 1; n <= DEPENDENT_SLOTS; n++) dependents.push(...dependentQuestions(n));

export const SECTIONS = [
  {
    id: "about",
    title: "About you and your filing status",
    fields: [
      q("about.first-name", "text", "Your first name", { req: true, full: true }),
      q("about.last-name", "text", "Your last name", { req: true, full: true }),
      q("about.ssn", "ssn", "Your Social Security number", { req: true, full: true }),
      q("about.birth-date", "date", "Your date of birth", { req: true, full: true }),
      q("about.occupation", "text", "Your occupation", { full: true }),
      q("about.phone", "text", "Best phone number to reach you", { full: true }),
      q("about.filing-status", "choice", "Your filing status", {
        req: true,
        choices: FILING_STATUSES,
        help: "As of December 31. Not sure? Pick your best guess and add a note.",
      }),
      q("about.marital-change", "yes-no", "Did your marital status change during the year?", {
        req: true,
      }),
      q("about.marital-change-date", "date", "Date of the change", {
        req: true,
        when: yes("about.marital-change"),
      }),
      q("about.address-changed", "yes-no", "Did your home address change?", { req: true }),
      q("about.new-address", "long-text", "Your new address and the date you moved", {
        req: true,
        when: yes("about.address-changed"),
      }),
      q("about.claimed-by-other", "yes-no", "Can someone else claim you as a dependent?", {
        full: true,
      }),
      upload("about.id", "Photo ID (driver's license or state ID), front and back", {
        na: true,
        full: true,
        help: "Many states ask for it when you e-file. A phone photo is fine.",
      }),
    ],
  },
  {
    id: "spouse",
    title: "Your spouse",
    when: married,
    fields: [
      q("spouse.first-name", "text", "Spouse's first name", { req: true }),
      q("spouse.last-name", "text", "Spouse's last name", { req: true }),
      q("spouse.ssn", "ssn", "Spouse's Social Security number", { req: true }),
      q("spouse.birth-date", "date", "Spouse's date of birth", { req: true, full: true }),
      q("spouse.occupation", "text", "Spouse's occupation", { full: true }),
      upload("spouse.id", "Spouse's photo ID, front and back", { na: true, full: true }),
    ],
  },
  {
    id: "dependents",
    title: "Dependents",
    full: true,
    intro: "Children and relatives you supported during the year.",
    fields: [
      q("dependents.have", "yes-no", "Do you have dependents?", { req: true }),
      q("dependents.count", "number", "How many?", {
        req: true,
        when: yes("dependents.have"),
      }),
      ...dependents,
      q("dependents.more", "long-text", "Dependents beyond the sixth: name, relationship, birth date, SSN", {
        req: true,
        when: (a) => a.number("dependents.count") > DEPENDENT_SLOTS,
      }),
    ],
  },
  {
    id: "income",
    title: "Income",
    fields: [
      q("income.sources", "multi-choice", "Which kinds of income did your household have?", {
        req: true,
        na: true,
        choices: (s) =>
          Object.entries(INCOME)
            .filter(([key]) => s.topic(key) || !(key in TOPICS))
            .map(([, label]) => label),
        help: "Tick all that apply to you or your spouse.",
      }),
      q("income.w2-count", "number", "How many W-2s did you receive?", { req: true, when: earns("wages") }),
      upload("income.w2", "Your W-2 forms", { req: true, when: earns("wages") }),
      q("income.job-change", "yes-no", "Did you change jobs during the year?", { when: earns("wages") }),
      upload("income.1099-int", "Form 1099-INT for each bank", { req: true, na: true, when: earns("interest") }),
      upload("income.1099-div", "Form 1099-DIV for each account", { req: true, na: true, when: earns("dividends") }),
      q("income.brokerage-count", "number", "How many brokerage accounts sold anything?", {
        req: true,
        when: earns("brokerage"),
      }),
      upload("income.1099-b", "Form 1099-B or the consolidated 1099 from each brokerage", {
        req: true,
        when: earns("brokerage"),
      }),
      q("income.basis-missing", "yes-no", "Any sales where the 1099-B shows no cost basis?", {
        when: earns("brokerage"),
        help: "Then tell us what you paid and when you bought.",
      }),
      q("income.business-name", "text", "Business name and what it does", { req: true, when: earns("business") }),
      q("income.business-ein", "ein", "Business EIN", { na: true, when: earns("business") }),
      q("income.business-gross", "money", "Gross receipts", { req: true, when: earns("business") }),
      q("income.business-expenses", "money", "Total business expenses", { req: true, when: earns("business") }),
      upload("income.1099-nec", "Forms 1099-NEC and 1099-K you received", { na: true, when: earns("business") }),
      q("income.home-office", "yes-no", "Do you use part of your home only for the business?", {
        when: earns("business"),
      }),
      q("income.rental-address", "long-text", "Address of each rental property", { req: true, when: earns("rental") }),
      q("income.rental-rents", "money", "Rents received", { req: true, when: earns("rental") }),
      q("income.rental-expenses", "money", "Rental expenses (repairs, insurance, management, utilities)", {
        req: true,
        when: earns("rental"),
      }),
      q("income.rental-personal-days", "number", "Days you or family used the property yourselves", {
        when: earns("rental"),
      }),
      upload("income.1099-r", "Forms 1099-R", { req: true, when: earns("retirement") }),
      q("income.rollover", "yes-no", "Was any of it rolled over into another plan or IRA?", {
        req: true,
        when: earns("retirement"),
      }),
      upload("income.ssa-1099", "Form SSA-1099", { req: true, when: earns("social") }),
      upload("income.1099-g", "Form 1099-G for unemployment", { req: true, na: true, when: earns("unemployment") }),
      q("income.unemployment", "money", "Unemployment received", { when: earns("unemployment") }),
      q("income.crypto-sold", "yes-no", "Did you sell, trade or spend digital assets?", {
        req: true,
        when: earns("crypto"),
      }),
      upload("income.crypto-report", "Form 1099-DA, Form 8949 or your exchange's gain/loss report", {
        na: true,
        when: yes("income.crypto-sold"),
      }),
      q("income.crypto-received", "yes-no", "Did you receive digital assets as pay, mining or staking rewards?", {
        req: true,
        when: earns("crypto"),
      }),
      q("income.other", "long-text", "Describe the other income and the amounts", { req: true, when: earns("other") }),
    ],
  },
  {
    id: "deductions",
    title: "Adjustments and deductions",
    full: true,
    fields: [
      q("ded.ira", "yes-no", "Did you contribute to an IRA for the year?", { req: true }),
      q("ded.ira-type", "choice", "Which kind?", {
        req: true,
        choices: ["Traditional", "Roth", "Both"],
        when: yes("ded.ira"),
      }),
      q("ded.ira-amount", "money", "Total IRA contributions", { req: true, when: yes("ded.ira") }),
      q("ded.hsa", "yes-no", "Did you have a health savings account (HSA)?", { req: true }),
      q("ded.hsa-amount", "money", "Your own HSA contributions (not through payroll)", {
        when: yes("ded.hsa"),
      }),
      upload("ded.hsa-forms", "Forms 5498-SA and 1099-SA", { na: true, when: yes("ded.hsa") }),
      q("ded.student-loan", "yes-no", "Did you pay student loan interest?", { req: true }),
      upload("ded.1098-e", "Form 1098-E", { na: true, when: yes("ded.student-loan") }),
      q("ded.mortgage", "yes-no", "Do you have a mortgage on your home?", { req: true }),
      upload("ded.1098", "Form 1098 mortgage interest statement", {
        req: true,
        when: yes("ded.mortgage"),
      }),
      q("ded.property-tax", "money", "Real estate taxes paid", { when: yes("ded.mortgage") }),
      q("ded.charity", "yes-no", "Did you give to charity?", { req: true }),
      q("ded.charity-cash", "money", "Cash and check gifts", { when: yes("ded.charity") }),
      q("ded.charity-goods", "money", "Value of goods given (clothing, furniture, cars)", {
        when: yes("ded.charity"),
      }),
      upload("ded.charity-receipts", "Receipts and acknowledgement letters", {
        na: true,
        when: yes("ded.charity"),
      }),
      q("ded.medical", "yes-no", "Did you pay large medical or dental bills not covered by insurance?", {
        req: true,
      }),
      q("ded.medical-amount", "money", "Unreimbursed medical and dental costs", {
        req: true,
        when: yes("ded.medical"),
      }),
      q("ded.state-estimates", "money", "State estimated tax paid during the year", { na: true }),
    ],
  },
  {
    id: "credits",
    title: "Credits",
    full: true,
    fields: [
      q("credits.education", "yes-no", "Did you pay college tuition for yourself or a dependent?", {
        req: true,
        topic: "education",
      }),
      q("credits.student", "text", "Student's name and school", {
        req: true,
        topic: "education",
        when: yes("credits.education"),
      }),
      upload("credits.1098-t", "Form 1098-T", {
        req: true,
        topic: "education",
        when: yes("credits.education"),
      }),
      q("credits.childcare", "yes-no", "Did you pay for child care so you could work?", {
        req: true,
        when: yes("dependents.have"),
      }),
      q("credits.childcare-provider", "text", "Provider's name and address", {
        req: true,
        when: yes("credits.childcare"),
      }),
      q("credits.childcare-ein", "ein", "Provider's EIN", {
        na: true,
        help: "Mark not applicable if the provider is a person with an SSN, and add it in a note.",
        when: yes("credits.childcare"),
      }),
      q("credits.childcare-amount", "money", "Amount paid for care", {
        req: true,
        when: yes("credits.childcare"),
      }),
      q("credits.energy", "yes-no", "Did you install solar, a heat pump, insulation, windows or an EV charger?", {
        req: true,
        topic: "energy",
      }),
      q("credits.energy-what", "long-text", "What you installed and when", {
        req: true,
        topic: "energy",
        when: yes("credits.energy"),
      }),
      q("credits.energy-cost", "money", "Total cost", {
        req: true,
        topic: "energy",
        when: yes("credits.energy"),
      }),
      upload("credits.energy-receipts", "Invoices or receipts", {
        na: true,
        topic: "energy",
        when: yes("credits.energy"),
      }),
    ],
  },
  {
    id: "estimates",
    title: "Estimated tax payments",
    full: true,
    fields: [
      q("est.made", "yes-no", "Did you make federal estimated tax payments?", { req: true }),
      ...[1, 2, 3, 4].map((n) =>
        q(`est.q${n}`, "money", `Payment ${n} (quarter ${n})`, {
          na: true,
          when: yes("est.made"),
        }),
      ),
      q("est.applied", "money", "Overpayment applied from last year's return", {
        when: yes("est.made"),
      }),
    ],
  },
  {
    id: "bank",
    title: "Bank account for your refund",
    full: true,
    fields: [
      q("bank.direct", "yes-no", "Should a refund go straight to your bank account?", { req: true }),
      q("bank.routing", "text", "Routing number (9 digits)", {
        req: true,
        when: yes("bank.direct"),
      }),
      q("bank.account", "text", "Account number", { req: true, when: yes("bank.direct") }),
      q("bank.type", "choice", "Account type", {
        req: true,
        choices: ["Checking", "Savings"],
        when: yes("bank.direct"),
      }),
    ],
  },
  {
    id: "other",
    title: "Other",
    fields: [
      q("other.foreign", "yes-no", "Did you have a bank or investment account outside the United States?", {
        req: true,
        topic: "foreign",
      }),
      q("other.foreign-max", "money", "Highest combined balance during the year", {
        req: true,
        topic: "foreign",
        when: yes("other.foreign"),
      }),
      q("other.foreign-countries", "text", "Countries and institutions", {
        req: true,
        topic: "foreign",
        when: yes("other.foreign"),
      }),
      q("other.life-events", "multi-choice", "Did any of these happen during the year?", {
        na: true,
        choices: LIFE_EVENTS,
      }),
      upload("other.home-closing", "Closing statement for the home you sold", {
        req: true,
        when: (a) => a.has("other.life-events", "Sold a home"),
      }),
      q("other.states", "text", "States you lived in, with dates", {
        req: true,
        when: (a) => a.has("other.life-events", "Moved to another state"),
      }),
      q("other.tax-letters", "yes-no", "Did you get letters from the IRS or a state tax agency?", { req: true }),
      upload("other.tax-letters-copies", "Copies of those letters", {
        req: true,
        when: yes("other.tax-letters"),
      }),
      q("other.notes", "long-text", "Anything else your preparer should know?"),
    ],
  },
];
