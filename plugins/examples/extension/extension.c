// Extension: the client reviews the extension request the firm prepared
// (form, estimated tax, payments, the amount to pay, the extended due date)
// and approves it or asks for changes. A Portal task type (portal:task@0.1.0).
#include <stdlib.h>
#include <string.h>

#include "portal_plugin.h"

#define MAX_NOTE 2000
#define MAX_SUMMARY 300

static const char *const FORMS[] = {"Form 4868 (individual)", "Form 7004 (business)",
                                    "Form 8868 (exempt organization)", NULL};
static const char *const TITLES[] = {
    "Application for Automatic Extension of Time To File U.S. Individual Income Tax Return",
    "Application for Automatic Extension of Time To File Certain Business Income Tax, Information, and Other Returns",
    "Application for Extension of Time To File an Exempt Organization Return",
};
// The usual extended due dates of a calendar-year return, as month numbers
// (the 15th, or the next business day): 4868 October; 7004 September for
// partnerships and S corporations, October for C corporations; 8868 November.
static const int DUE_MONTHS[][2] = {{10, 10}, {9, 10}, {11, 11}};

static const char *const DECISIONS[] = {"Approve", "Request changes", NULL};

typedef struct {
  int form;  // index into FORMS, or -1
  int64_t liability, payments, pay;
  pp_str due;
  pp_str note;
} request;

// ---------------------------------------------------------------- describe

void exports_portal_task_task_type_describe(exports_portal_task_task_type_info_t *ret) {
  pp_describe(ret, "extension", "Extension review", "1.0.0",
              "The client checks the extension the firm prepared and approves it or asks for changes.");
}

void exports_portal_task_task_type_settings_form(exports_portal_task_task_type_list_section_t *ret) {
  memset(ret, 0, sizeof *ret);
  pp_section *s = pp_add_section((pp_sections *)ret, "extension", "Extension request");
  pp_field *f = pp_add_field(s, "form", "Form", PORTAL_TASK_TYPES_KIND_CHOICE);
  pp_set_choices(f, FORMS);
  f->required = true;
  f = pp_add_field(s, "liability", "Estimated total tax", PORTAL_TASK_TYPES_KIND_MONEY);
  f->required = true;
  f = pp_add_field(s, "payments", "Payments and credits already made", PORTAL_TASK_TYPES_KIND_MONEY);
  f->required = true;
  f->help = pp_some("Withholding, estimated payments and last year's overpayment applied.");
  f = pp_add_field(s, "pay", "Amount to pay with the extension", PORTAL_TASK_TYPES_KIND_MONEY);
  f->required = true;
  f = pp_add_field(s, "due", "Extended due date", PORTAL_TASK_TYPES_KIND_DATE);
  f->required = true;
  f = pp_add_field(s, "note", "Note to the client", PORTAL_TASK_TYPES_KIND_LONG_TEXT);
  f->help = pp_some("Shown with the figures, e.g. why the return needs more time.");
}

// ---------------------------------------------------------------- settings

static void read_money(const pp_answers *settings, const char *id, const char *what, int64_t *out,
                       pp_issues *problems) {
  const pp_answer *a = pp_find(settings, id);
  pp_buf m = {0};
  if (!a) {
    pp_add(&m, "Enter the ");
    pp_add(&m, what);
    pp_add(&m, ".");
  } else if (a->value.tag != PORTAL_TASK_TYPES_VALUE_CENTS) {
    pp_add(&m, "The ");
    pp_add(&m, what);
    pp_add(&m, " must be an amount of money.");
  } else if (a->value.val.cents < 0) {
    pp_add(&m, "The ");
    pp_add(&m, what);
    pp_add(&m, " can't be negative.");
  } else {
    *out = a->value.val.cents;
    return;
  }
  pp_add_issue(problems, id, true, pp_take(&m));
}

static int pick_index(pp_str picked, const char *const *choices) {
  for (int i = 0; choices[i]; i++)
    if (pp_eq(picked, choices[i])) return i;
  return -1;
}

static void check_due(const request *r, pp_issues *problems) {
  int y, m, d;
  if (!pp_date(r->due, &y, &m, &d)) {
    pp_report(problems, "due", true, "Enter the extended due date as YYYY-MM-DD.");
    return;
  }
  if (r->form < 0) return;
  const int *months = DUE_MONTHS[r->form];
  if ((m == months[0] || m == months[1]) && d >= 15 && d <= 18) return;
  pp_buf b = {0};
  pp_add(&b, "That is not the usual extended due date for ");
  pp_add(&b, FORMS[r->form]);
  pp_add(&b, r->form == 0   ? " (October 15"
             : r->form == 1 ? " (September 15 for partnerships and S corporations, October 15 for C corporations"
                            : " (November 15");
  pp_add(&b, ", or the next business day); check it unless the return is for a fiscal year.");
  pp_add_issue(problems, "due", false, pp_take(&b));
}

// What the client pays against what is owed.
static void check_payment(const request *r, pp_issues *problems) {
  int64_t balance = r->liability - r->payments;
  pp_buf b = {0};
  if (balance <= 0 && r->pay > 0) {
    pp_add(&b, "Payments already cover the estimated tax; nothing needs to be paid with the extension.");
  } else if (r->pay < balance) {
    pp_add(&b, "Paying ");
    pp_add_money(&b, r->pay);
    pp_add(&b, " leaves ");
    pp_add_money(&b, balance - r->pay);
    pp_add(&b, " of the balance unpaid: the IRS charges interest and a late-payment penalty on it from the "
               "original due date.");
  } else if (r->pay > balance) {
    pp_add(&b, "The payment is more than the balance due of ");
    pp_add_money(&b, balance);
    pp_add(&b, "; the excess is credited when the return is filed.");
  }
  if (b.len) pp_add_issue(problems, "pay", false, pp_take(&b));
}

// Reads the settings; `problems` gets what is wrong with them.
static void read_request(const pp_answers *settings, request *r, pp_issues *problems) {
  memset(r, 0, sizeof *r);
  r->form = -1;
  const pp_answer *form = pp_find(settings, "form");
  if (form && form->value.tag == PORTAL_TASK_TYPES_VALUE_PICKED && form->value.val.picked.len == 1)
    r->form = pick_index(form->value.val.picked.ptr[0], FORMS);
  if (r->form < 0) pp_report(problems, "form", true, "Choose the form: 4868, 7004 or 8868.");
  size_t before = problems->len;
  read_money(settings, "liability", "estimated total tax", &r->liability, problems);
  read_money(settings, "payments", "payments already made", &r->payments, problems);
  read_money(settings, "pay", "amount to pay with the extension", &r->pay, problems);
  if (problems->len == before) check_payment(r, problems);
  const pp_value *due = pp_get(settings, "due", PORTAL_TASK_TYPES_VALUE_DATE);
  if (due) {
    r->due = due->val.date;
    check_due(r, problems);
  } else {
    pp_report(problems, "due", true, "Enter the extended due date as YYYY-MM-DD.");
  }
  const pp_answer *note = pp_find(settings, "note");
  if (note && (note->value.tag != PORTAL_TASK_TYPES_VALUE_TEXT || note->value.val.text.len > MAX_NOTE))
    pp_report(problems, "note", true, "The note must be text of at most 2000 characters.");
  else if (note) r->note = pp_trim(note->value.val.text);
}

void exports_portal_task_task_type_check_settings(exports_portal_task_task_type_list_answer_t *settings,
                                                  exports_portal_task_task_type_list_issue_t *ret) {
  memset(ret, 0, sizeof *ret);
  request r;
  read_request(settings, &r, (pp_issues *)ret);
  pp_buf b = {0};
  pp_add(&b, "checked settings: ");
  pp_add_int(&b, (int64_t)ret->len);
  pp_add(&b, " issue(s), ");
  pp_add_int(&b, (int64_t)pp_blocking((pp_issues *)ret));
  pp_add(&b, " blocking");
  pp_log_buf(PORTAL_TASK_LOG_LEVEL_INFO, &b);
}

// ---------------------------------------------------------------- answers

enum { UNDECIDED = -1, APPROVE = 0, CHANGES = 1 };

typedef struct {
  int decision;
  pp_str comment;  // trimmed; empty when none
} reply;

static void read_reply(const pp_answers *answers, reply *r, pp_issues *issues) {
  memset(r, 0, sizeof *r);
  r->decision = UNDECIDED;
  const pp_answer *d = pp_find(answers, "decision");
  if (d && d->value.tag == PORTAL_TASK_TYPES_VALUE_PICKED && d->value.val.picked.len == 1)
    r->decision = pick_index(d->value.val.picked.ptr[0], DECISIONS);
  if (d && r->decision == UNDECIDED) pp_report(issues, "decision", true, "Choose Approve or Request changes.");
  if (r->decision != CHANGES) return;  // the comment is hidden: its answer is kept, not checked
  const pp_answer *c = pp_find(answers, "comment");
  if (c && c->value.tag != PORTAL_TASK_TYPES_VALUE_TEXT)
    pp_report(issues, "comment", true, "Please write what should change.");
  else if (c && c->value.val.text.len > MAX_NOTE)
    pp_report(issues, "comment", true, "Please keep the comment under 2000 characters.");
  else if (c)
    r->comment = pp_trim(c->value.val.text);
}

// ---------------------------------------------------------------- render

static void statement(pp_section *s, const char *id, const char *label, pp_buf *text) {
  pp_field *f = pp_add_field(s, id, label, PORTAL_TASK_TYPES_KIND_STATEMENT);
  f->help = pp_take_opt(text);
}

static void figure(pp_section *s, const char *id, const char *label, int64_t cents) {
  pp_buf b = {0};
  pp_add_money(&b, cents);
  statement(s, id, label, &b);
}

static void add_figures(pp_section *s, const request *r) {
  pp_buf b = {0};
  pp_add(&b, FORMS[r->form]);
  pp_add(&b, ": ");
  pp_add(&b, TITLES[r->form]);
  statement(s, "figure.form", "Form", &b);
  figure(s, "figure.liability", "Estimated total tax", r->liability);
  figure(s, "figure.payments", "Payments and credits already made", r->payments);
  int64_t balance = r->liability - r->payments;
  figure(s, "figure.balance", balance >= 0 ? "Balance due" : "Expected overpayment", balance >= 0 ? balance : -balance);
  pp_add_money(&b, r->pay);
  if (r->pay < balance) pp_add(&b, " (less than the balance due: interest and a late-payment penalty apply to the rest)");
  statement(s, "figure.pay", "Amount to pay with the extension", &b);
  pp_add_long_date(&b, r->due);
  statement(s, "figure.due", "New deadline to file", &b);
  if (r->note.len) {
    pp_add_str(&b, r->note);
    statement(s, "figure.note", "Note from your preparer", &b);
  }
}

static void add_decision(pp_sections *sections, const reply *r) {
  pp_section *s = pp_add_section(sections, "decision", "Your decision");
  pp_field *f = pp_add_field(s, "decision", "Do you approve this extension?", PORTAL_TASK_TYPES_KIND_CHOICE);
  pp_set_choices(f, DECISIONS);
  f->required = true;
  f = pp_add_field(s, "comment", "What should we change?", PORTAL_TASK_TYPES_KIND_LONG_TEXT);
  f->help = pp_some("For example a payment you made that is missing, or a different amount to pay now.");
  f->visible = r->decision == CHANGES;
  f->required = r->decision == CHANGES;
}

static void intro(pp_section *s, uint16_t tax_year) {
  pp_buf b = {0};
  pp_add(&b, "We have prepared an extension of time to file your ");
  if (tax_year) {
    pp_add_int(&b, tax_year);
    pp_add(&b, " ");
  }
  pp_add(&b, "return. Please check the figures, then approve it or tell us what to change. An extension gives more "
             "time to file, not to pay: tax paid after the original due date owes interest.");
  s->intro = pp_take_opt(&b);
}

// When the settings can't be used (check-settings should have stopped that),
// a message for the client naming the first problem.
static bool unusable(const pp_issues *problems, pp_str *message) {
  for (size_t i = 0; i < problems->len; i++) {
    if (!problems->ptr[i].blocking) continue;
    pp_buf b = {0};
    pp_add(&b, "This extension request is incomplete (");
    pp_add_str(&b, problems->ptr[i].message);
    pp_add(&b, "). Please ask your preparer to send it again.");
    *message = pp_take(&b);
    pp_log(PORTAL_TASK_LOG_LEVEL_WARN, "the settings are incomplete");
    return true;
  }
  return false;
}

bool exports_portal_task_task_type_render(exports_portal_task_task_type_ctx_t *c,
                                          exports_portal_task_task_type_list_answer_t *settings,
                                          exports_portal_task_task_type_list_answer_t *answers,
                                          exports_portal_task_task_type_list_answer_t *prior,
                                          exports_portal_task_task_type_view_t *ret, task_plugin_string_t *err) {
  (void)prior;  // an extension does not depend on last year's answers
  request req;
  pp_issues problems = {0};
  read_request(settings, &req, &problems);
  if (unusable(&problems, err)) return false;
  memset(ret, 0, sizeof *ret);
  reply rep;
  read_reply(answers, &rep, &ret->issues);
  pp_section *s = pp_add_section(&ret->sections, "request", "Your extension request");
  intro(s, c->tax_year);
  add_figures(s, &req);
  add_decision(&ret->sections, &rep);
  ret->total = rep.decision == CHANGES ? 2 : 1;
  ret->done = (rep.decision != UNDECIDED) + (rep.decision == CHANGES && rep.comment.len > 0);
  pp_buf b = {0};
  pp_add(&b, "rendered ");
  pp_add(&b, FORMS[req.form]);
  pp_add(&b, ": balance ");
  pp_add_money(&b, req.liability - req.payments);
  pp_add(&b, ", paying ");
  pp_add_money(&b, req.pay);
  pp_add(&b, rep.decision == APPROVE ? "; approved" : rep.decision == CHANGES ? "; changes requested" : "; undecided");
  pp_log_buf(PORTAL_TASK_LOG_LEVEL_INFO, &b);
  return true;
}

// ---------------------------------------------------------------- submit

// The comment on one line, cut at a character boundary.
static void add_one_line(pp_buf *b, pp_str text, size_t max) {
  size_t n = text.len;
  if (n > max) {
    n = max;
    while (n && (text.ptr[n] & 0xC0) == 0x80) n--;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = (char)text.ptr[i];
    pp_addn(b, ch == '\n' || ch == '\r' || ch == '\t' ? " " : &ch, 1);
  }
  if (n < text.len) pp_add(b, "...");
}

static void summarize(pp_buf *b, const request *req, const reply *rep) {
  if (rep->decision == CHANGES) {
    pp_add(b, "Changes requested: ");
    add_one_line(b, rep->comment, MAX_SUMMARY);
    return;
  }
  pp_add(b, "Approved ");
  pp_add(b, FORMS[req->form]);
  pp_add(b, ": pay ");
  pp_add_money(b, req->pay);
  pp_add(b, " with the extension; new deadline ");
  pp_add_long_date(b, req->due);
  pp_add(b, ".");
}

bool exports_portal_task_task_type_submit(exports_portal_task_task_type_ctx_t *c,
                                          exports_portal_task_task_type_list_answer_t *settings,
                                          exports_portal_task_task_type_list_answer_t *answers,
                                          exports_portal_task_task_type_outcome_t *ret,
                                          exports_portal_task_task_type_list_issue_t *err) {
  (void)c;
  pp_issues *out = (pp_issues *)err;
  memset(out, 0, sizeof *out);
  request req;
  pp_issues problems = {0};
  read_request(settings, &req, &problems);
  pp_str incomplete;
  if (unusable(&problems, &incomplete)) {
    pp_add_issue(out, NULL, true, incomplete);
    return false;
  }
  reply rep;
  read_reply(answers, &rep, out);
  if (rep.decision == UNDECIDED && !pp_find(answers, "decision"))
    pp_report(out, "decision", true, "Please choose Approve or Request changes.");
  if (rep.decision == CHANGES && !rep.comment.len) pp_report(out, "comment", true, "Please write what should change.");
  if (out->len) {
    pp_log(PORTAL_TASK_LOG_LEVEL_INFO, "submit refused: no decision, or changes requested without a comment");
    return false;
  }
  pp_buf b = {0};
  summarize(&b, &req, &rep);
  pp_log(PORTAL_TASK_LOG_LEVEL_INFO, rep.decision == APPROVE ? "submitted: approved" : "submitted: changes requested");
  ret->summary = pp_take(&b);
  ret->finish = rep.decision == APPROVE ? PORTAL_TASK_TYPES_FINISH_COMPLETED : PORTAL_TASK_TYPES_FINISH_CHANGES_REQUESTED;
  ret->notify_staff = true;
  return true;
}
