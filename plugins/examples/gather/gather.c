// Gather: the list of documents a firm requests from a client, as a Portal
// task type (portal:task@0.1.0). Staff pick documents from a catalogue and
// add their own lines; each becomes one upload the firm reviews.
//
// Custom lines (setting "custom"), one item per line:
//   1099-INT from Bank X                      an item; the client may mark it N/A
//   !Closing statement for the house sale    "!": required, no "not applicable"
//   Daycare receipts | with the provider's EIN   text after "|" is a hint
#include <stdlib.h>
#include <string.h>

#include "portal_plugin.h"

#define MAX_ITEMS 120
#define MAX_LABEL 120
#define MAX_NOTE 2000
#define ID_LEN 64

enum { IMAGE = 1, PDF = 2, SHEET = 4 };

typedef struct item item;
typedef void (*rule_fn)(const item *it, const pp_value *v, pp_issues *out);

typedef struct {
  const char *id;
  const char *label;
  const char *help;
  const char *accept;
  int types;  // what the item takes: IMAGE | PDF | SHEET
  bool allow_na;
  bool late;  // often arrives after the client starts (a K-1)
  rule_fn rule;
} entry;

struct item {
  char id[ID_LEN];
  pp_str label;
  pp_str hint;
  const entry *kind;  // NULL for a custom line
  bool allow_na;
};

typedef struct {
  item *items;
  size_t count;
  pp_str note;
} request;

static const char *const DOCS = "image/*,.pdf";

static void w2_rule(const item *it, const pp_value *v, pp_issues *out);
static void brokerage_rule(const item *it, const pp_value *v, pp_issues *out);
static void prior_return_rule(const item *it, const pp_value *v, pp_issues *out);
static void id_rule(const item *it, const pp_value *v, pp_issues *out);

static const entry CATALOGUE[] = {
    {"doc.w2", "W-2 (wages)", "One from each employer; they arrive by January 31.", DOCS, IMAGE | PDF, true, false, w2_rule},
    {"doc.1099-int", "1099-INT (interest)", "From each bank or brokerage that paid you interest.", DOCS, IMAGE | PDF,
     true, false, NULL},
    {"doc.1099-div", "1099-DIV (dividends)", "Often inside your brokerage's consolidated 1099.", DOCS, IMAGE | PDF,
     true, false, NULL},
    {"doc.1099-b", "1099-B (brokerage sales)",
     "The consolidated 1099 from each brokerage account. A gain/loss spreadsheet may be added.",
     "image/*,.pdf,.csv,.xlsx", IMAGE | PDF | SHEET, true, false, brokerage_rule},
    {"doc.1099-nec", "1099-NEC (contract work)", "From each client that paid you $600 or more.", DOCS, IMAGE | PDF,
     true, false, NULL},
    {"doc.1099-k", "1099-K (payment apps, card sales)", NULL, DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.1099-r", "1099-R (retirement distributions)", "Pensions, IRAs, 401(k)s and annuities.", DOCS,
     IMAGE | PDF, true, false, NULL},
    {"doc.ssa-1099", "SSA-1099 (Social Security)", NULL, DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.1099-g", "1099-G (unemployment, state refund)", NULL, DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.1098", "1098 (mortgage interest)", "From each lender; also shows property tax if paid from escrow.", DOCS,
     IMAGE | PDF, true, false, NULL},
    {"doc.1098-t", "1098-T (tuition)", "From the school's student portal.", DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.1098-e", "1098-E (student loan interest)", NULL, DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.1095-a", "1095-A (Marketplace health insurance)", "Only if you bought insurance on healthcare.gov or a state exchange.",
     DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.k-1", "K-1 (partnership, S corporation, trust)", "Partnership K-1s often come after March 15.", DOCS,
     IMAGE | PDF, true, true, NULL},
    {"doc.prior-return", "Prior-year tax return", "The complete PDF, with every schedule.", ".pdf",
     IMAGE | PDF, true, false, prior_return_rule},
    {"doc.id", "Photo ID (driver's license)", "Front and back; a phone photo is fine.", DOCS, IMAGE | PDF, false,
     false, id_rule},
    {"doc.property-tax", "Property tax bill", NULL, DOCS, IMAGE | PDF, true, false, NULL},
    {"doc.estimates", "Estimated tax payment confirmations", "Federal and state, with dates paid.", DOCS,
     IMAGE | PDF, true, false, NULL},
};
#define CATALOGUE_LEN (sizeof CATALOGUE / sizeof CATALOGUE[0])

static const entry CUSTOM = {NULL, NULL, NULL, DOCS, IMAGE | PDF, true, false, NULL};

static const entry *kind_of(const item *it) { return it->kind ? it->kind : &CUSTOM; }

// ---------------------------------------------------------------- describe

void exports_portal_task_task_type_describe(exports_portal_task_task_type_info_t *ret) {
  pp_describe(ret, "gather", "Document request", "1.0.0",
              "A list of documents the client uploads (or marks not applicable) and the firm accepts or returns.");
}

void exports_portal_task_task_type_settings_form(exports_portal_task_task_type_list_section_t *ret) {
  memset(ret, 0, sizeof *ret);
  pp_section *s = pp_add_section((pp_sections *)ret, "request", "Documents to request");
  const char *labels[CATALOGUE_LEN + 1];
  for (size_t i = 0; i < CATALOGUE_LEN; i++) labels[i] = CATALOGUE[i].label;
  labels[CATALOGUE_LEN] = NULL;
  pp_field *f = pp_add_field(s, "documents", "Documents", PORTAL_TASK_TYPES_KIND_MULTI_CHOICE);
  pp_set_choices(f, labels);
  f->help = pp_some("Each becomes one item the client uploads or marks not applicable (a photo ID can't be).");
  f = pp_add_field(s, "custom", "Other documents, one per line", PORTAL_TASK_TYPES_KIND_LONG_TEXT);
  f->help = pp_some(
      "For example \"1099-INT from Bank X\". Start a line with ! when the client must upload it (no \"not "
      "applicable\"); add a hint for the client after |, e.g. \"!Closing statement | from the title company\".");
  f = pp_add_field(s, "note", "Note to the client", PORTAL_TASK_TYPES_KIND_LONG_TEXT);
  f->help = pp_some("Shown above the list.");
}

// ---------------------------------------------------------------- settings

// Field ids for custom lines come from their text, so reordering the lines
// keeps each answer with its item: "custom.1099-int-from-bank-x". A line with
// no ASCII letters or digits gets a hash of its text: "custom.item-1a2b3c4d".
static void custom_id(char *id, pp_str label) {
  pp_buf b = {0};
  pp_add(&b, "custom.");
  bool dash = true;
  for (size_t i = 0; i < label.len && b.len < ID_LEN - 12; i++) {
    uint8_t c = label.ptr[i];
    if (c >= 'A' && c <= 'Z') c += 32;
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (word) pp_addn(&b, (const char *)&c, 1);
    else if (!dash) pp_add(&b, "-");
    dash = !word;
  }
  while (b.len > 7 && b.p[b.len - 1] == '-') b.p[--b.len] = 0;
  if (b.len == 7) {
    uint32_t h = 2166136261u;  // FNV-1a
    for (size_t i = 0; i < label.len; i++) h = (h ^ label.ptr[i]) * 16777619u;
    pp_add(&b, "item-");
    for (int shift = 28; shift >= 0; shift -= 4) pp_addn(&b, &"0123456789abcdef"[(h >> shift) & 15], 1);
  }
  memcpy(id, b.p, b.len + 1);
  free(b.p);
}

static bool id_taken(const request *r, const char *id) {
  for (size_t i = 0; i < r->count; i++)
    if (strcmp(r->items[i].id, id) == 0) return true;
  return false;
}

static void add_custom_line(request *r, pp_str line, size_t n, pp_issues *problems) {
  bool required = line.len && line.ptr[0] == '!';
  pp_str label = line, hint = {NULL, 0};
  if (required) label = (pp_str){line.ptr + 1, line.len - 1};
  for (size_t i = 0; i < label.len; i++) {
    if (label.ptr[i] == '|') {
      hint = pp_trim((pp_str){label.ptr + i + 1, label.len - i - 1});
      label.len = i;
      break;
    }
  }
  label = pp_trim(label);
  pp_buf m = {0};
  if (!label.len || label.len > MAX_LABEL) {
    pp_add(&m, "Other documents, line ");
    pp_add_int(&m, (int64_t)n);
    pp_add(&m, label.len ? ": keep each item under 120 characters." : ": the item has no name.");
    pp_add_issue(problems, "custom", true, pp_take(&m));
    return;
  }
  item *it = &r->items[r->count];
  memset(it, 0, sizeof *it);
  custom_id(it->id, label);
  if (id_taken(r, it->id)) {
    pp_add(&m, "Other documents, line ");
    pp_add_int(&m, (int64_t)n);
    pp_add(&m, " repeats an earlier item; the client will see it twice.");
    pp_add_issue(problems, "custom", false, pp_take(&m));
    char base[ID_LEN];
    strcpy(base, it->id);
    for (int64_t k = 2; id_taken(r, it->id); k++) {
      pp_add(&m, base);
      pp_add(&m, "-");
      pp_add_int(&m, k);
      memcpy(it->id, m.p, m.len + 1);
      free(pp_take(&m).ptr);
    }
  }
  it->label = label;
  it->hint = hint;
  it->allow_na = !required;
  r->count++;
}

static void read_custom(request *r, pp_str text, pp_issues *problems) {
  size_t line = 0;
  for (size_t start = 0, i = 0; i <= text.len; i++) {
    if (i < text.len && text.ptr[i] != '\n') continue;
    pp_str l = pp_trim((pp_str){text.ptr + start, i - start});
    start = i + 1;
    line++;
    if (!l.len) continue;
    if (r->count == MAX_ITEMS) {
      pp_report(problems, "custom", true, "At most 120 documents in one request; send a second request for the rest.");
      return;
    }
    add_custom_line(r, l, line, problems);
  }
}

static void read_documents(request *r, const pp_answer *a, pp_issues *problems) {
  if (a->value.tag != PORTAL_TASK_TYPES_VALUE_PICKED) {
    pp_report(problems, "documents", true, "Documents must be picked from the list.");
    return;
  }
  // Catalogue order, whatever order they were ticked in.
  for (size_t c = 0; c < CATALOGUE_LEN; c++) {
    for (size_t i = 0; i < a->value.val.picked.len; i++) {
      if (!pp_eq(a->value.val.picked.ptr[i], CATALOGUE[c].label)) continue;
      item *it = &r->items[r->count++];
      memset(it, 0, sizeof *it);
      strcpy(it->id, CATALOGUE[c].id);
      it->label = pp_view(CATALOGUE[c].label);
      it->kind = &CATALOGUE[c];
      it->allow_na = CATALOGUE[c].allow_na;
      break;
    }
  }
  for (size_t i = 0; i < a->value.val.picked.len; i++) {
    bool known = false;
    for (size_t c = 0; c < CATALOGUE_LEN && !known; c++) known = pp_eq(a->value.val.picked.ptr[i], CATALOGUE[c].label);
    if (known) continue;
    pp_buf m = {0};
    pp_add(&m, "Unknown document \"");
    pp_add_str(&m, a->value.val.picked.ptr[i]);
    pp_add(&m, "\".");
    pp_add_issue(problems, "documents", true, pp_take(&m));
  }
}

static void read_request(const pp_answers *settings, request *r, pp_issues *problems) {
  memset(r, 0, sizeof *r);
  r->items = calloc(MAX_ITEMS, sizeof(item));
  if (!r->items) __builtin_trap();
  const pp_answer *docs = pp_find(settings, "documents");
  if (docs) read_documents(r, docs, problems);
  const pp_answer *custom = pp_find(settings, "custom");
  if (custom && custom->value.tag == PORTAL_TASK_TYPES_VALUE_TEXT) read_custom(r, custom->value.val.text, problems);
  else if (custom) pp_report(problems, "custom", true, "Other documents must be text, one item per line.");
  const pp_answer *note = pp_find(settings, "note");
  if (note && (note->value.tag != PORTAL_TASK_TYPES_VALUE_TEXT || note->value.val.text.len > MAX_NOTE))
    pp_report(problems, "note", true, "The note must be text of at most 2000 characters.");
  else if (note) r->note = pp_trim(note->value.val.text);
  if (r->count == 0 && pp_blocking(problems) == 0)
    pp_report(problems, "documents", true, "Choose at least one document, or add one under Other documents.");
}

void exports_portal_task_task_type_check_settings(exports_portal_task_task_type_list_answer_t *settings,
                                                  exports_portal_task_task_type_list_issue_t *ret) {
  memset(ret, 0, sizeof *ret);
  request r;
  read_request(settings, &r, (pp_issues *)ret);
  pp_buf b = {0};
  pp_add(&b, "checked settings: ");
  pp_add_int(&b, (int64_t)r.count);
  pp_add(&b, " item(s), ");
  pp_add_int(&b, (int64_t)ret->len);
  pp_add(&b, " issue(s)");
  pp_log_buf(PORTAL_TASK_LOG_LEVEL_INFO, &b);
}

// ---------------------------------------------------------------- answers

static int file_type(pp_str name) {
  static const char *const images[] = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".gif", ".webp", ".tif", ".tiff"};
  for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
    if (pp_ends_with_ci(name, images[i])) return IMAGE;
  if (pp_ends_with_ci(name, ".pdf")) return PDF;
  if (pp_ends_with_ci(name, ".csv") || pp_ends_with_ci(name, ".xlsx") || pp_ends_with_ci(name, ".xls")) return SHEET;
  return 0;
}

static size_t count_type(const pp_value *v, int type) {
  size_t n = 0;
  for (size_t i = 0; i < v->val.files.len; i++) n += (file_type(v->val.files.ptr[i]) & type) != 0;
  return n;
}

// An issue "<label>: <text>" about item `it`.
static void item_issue(pp_issues *out, const item *it, bool blocking, const char *text, pp_str quoted) {
  pp_buf m = {0};
  pp_add_str(&m, it->label);
  pp_add(&m, ": ");
  if (quoted.len) {
    pp_add(&m, "\"");
    pp_add_str(&m, quoted);
    pp_add(&m, "\" ");
  }
  pp_add(&m, text);
  pp_add_issue(out, it->id, blocking, pp_take(&m));
}

static const pp_str NONE = {NULL, 0};

static void w2_rule(const item *it, const pp_value *v, pp_issues *out) {
  for (size_t i = 0; i < v->val.files.len; i++)
    if (pp_contains_ci(v->val.files.ptr[i], "stub"))
      item_issue(out, it, false, "looks like a pay stub; we need the W-2 itself (employers send it by January 31).",
                 v->val.files.ptr[i]);
}

static void brokerage_rule(const item *it, const pp_value *v, pp_issues *out) {
  if (v->val.files.len && count_type(v, SHEET) == v->val.files.len)
    item_issue(out, it, false,
               "a spreadsheet helps, but please also upload the 1099-B (PDF) the brokerage issued: it shows what "
               "was reported to the IRS.",
               NONE);
}

static void prior_return_rule(const item *it, const pp_value *v, pp_issues *out) {
  if (count_type(v, IMAGE))
    item_issue(out, it, false,
               "photos of a return are hard to read and often miss pages; please upload the PDF from last year's "
               "tax software or preparer if you have it.",
               NONE);
}

static void id_rule(const item *it, const pp_value *v, pp_issues *out) {
  if (v->val.files.len == 1 && count_type(v, IMAGE) == 1)
    item_issue(out, it, false, "please upload both the front and the back.", NONE);
}

// N/A needs a reason and must be allowed. A K-1 that has not arrived yet is
// a real N/A for now, but it holds up the return: say so.
static void check_na(const item *it, pp_str reason, pp_issues *out) {
  if (!it->allow_na) {
    item_issue(out, it, true, "this document is required and can't be marked not applicable.", NONE);
  } else if (!pp_trim(reason).len) {
    item_issue(out, it, true, "please say why this doesn't apply.", NONE);
  } else if (it->kind && it->kind->late &&
             (pp_contains_ci(reason, "yet") || pp_contains_ci(reason, "wait") || pp_contains_ci(reason, "receiv"))) {
    item_issue(out, it, false,
               "we can't file until every K-1 arrives; upload it when it comes, or your preparer may file an "
               "extension.",
               NONE);
  }
}

static void check_files(const item *it, const pp_value *v, pp_issues *out) {
  const entry *k = kind_of(it);
  for (size_t i = 0; i < v->val.files.len; i++) {
    int t = file_type(v->val.files.ptr[i]);
    if (t & k->types) continue;
    item_issue(out, it, true,
               k->types & SHEET ? "is not a PDF, a photo or a spreadsheet; please upload one of those."
                                : "is not a PDF or a photo; please upload a PDF or a picture of the document.",
               v->val.files.ptr[i]);
  }
  if (k->rule) k->rule(it, v, out);
}

typedef struct {
  size_t accepted, na, waiting, returned, missing;
} tally;

// Checks one item's answer and counts it. Returns whether it is done
// (accepted, or not applicable and not refused).
static bool check_item(const item *it, const pp_answer *a, tally *t, pp_issues *out) {
  if (!a) {
    t->missing++;
    return false;
  }
  const pp_value *v = &a->value;
  bool returned = a->review == PORTAL_TASK_TYPES_REVIEW_RETURNED;
  if (returned) {
    t->returned++;
    item_issue(out, it, true, "returned by your preparer: please replace it (their reason is shown with the item).",
               NONE);
    return false;
  }
  // Staff have the last word: what they accepted is not second-guessed.
  if (a->review == PORTAL_TASK_TYPES_REVIEW_ACCEPTED) {
    if (v->tag == PORTAL_TASK_TYPES_VALUE_NA) t->na++;
    else t->accepted++;
    return true;
  }
  if (v->tag == PORTAL_TASK_TYPES_VALUE_NA) {
    check_na(it, v->val.na, out);
    t->na++;
    return it->allow_na && pp_trim(v->val.na).len > 0;
  }
  if (v->tag != PORTAL_TASK_TYPES_VALUE_FILES || v->val.files.len == 0) {
    t->missing++;
    if (v->tag != PORTAL_TASK_TYPES_VALUE_FILES) item_issue(out, it, true, "please upload the file again.", NONE);
    return false;
  }
  check_files(it, v, out);
  t->waiting++;
  return false;
}

typedef struct {
  request r;
  tally t;
  size_t done;
  pp_issues issues;
} evaluation;

static void evaluate(const pp_answers *settings, const pp_answers *answers, evaluation *e) {
  memset(e, 0, sizeof *e);
  pp_issues ignored = {0};
  read_request(settings, &e->r, &ignored);
  for (size_t i = 0; i < e->r.count; i++) {
    const item *it = &e->r.items[i];
    e->done += check_item(it, pp_find(answers, it->id), &e->t, &e->issues);
  }
}

static void add_tally(pp_buf *b, const tally *t) {
  pp_add_int(b, (int64_t)t->accepted);
  pp_add(b, " accepted, ");
  pp_add_int(b, (int64_t)t->na);
  pp_add(b, " not applicable, ");
  pp_add_int(b, (int64_t)t->waiting);
  pp_add(b, " to review, ");
  pp_add_int(b, (int64_t)t->returned);
  pp_add(b, " returned, ");
  pp_add_int(b, (int64_t)t->missing);
  pp_add(b, " missing");
}

// ---------------------------------------------------------------- render

static void item_help(pp_field *f, const item *it, const pp_answers *prior) {
  pp_buf h = {0};
  if (it->hint.len) pp_add_str(&h, it->hint);
  else if (it->kind && it->kind->help) pp_add(&h, it->kind->help);
  const pp_value *last = pp_get(prior, it->id, PORTAL_TASK_TYPES_VALUE_FILES);
  if (last && last->val.files.len) {
    if (h.len) pp_add(&h, " ");
    pp_add(&h, "Last year you sent ");
    pp_add_int(&h, (int64_t)last->val.files.len);
    pp_add(&h, last->val.files.len == 1 ? " file for this item." : " files for this item.");
  }
  f->help = pp_take_opt(&h);
}

// Fewer files than last year for the same item: one may be missing.
static void compare_prior(const item *it, const pp_answers *answers, const pp_answers *prior, pp_issues *out) {
  const pp_value *last = pp_get(prior, it->id, PORTAL_TASK_TYPES_VALUE_FILES);
  const pp_answer *now = pp_find(answers, it->id);
  if (!last || !now || now->value.tag != PORTAL_TASK_TYPES_VALUE_FILES || !now->value.val.files.len) return;
  if (now->review == PORTAL_TASK_TYPES_REVIEW_ACCEPTED || now->value.val.files.len >= last->val.files.len) return;
  pp_buf m = {0};
  pp_add(&m, "last year you sent ");
  pp_add_int(&m, (int64_t)last->val.files.len);
  pp_add(&m, " files here and now ");
  pp_add_int(&m, (int64_t)now->value.val.files.len);
  pp_add(&m, ": is one missing (one per employer, bank or brokerage account)?");
  item_issue(out, it, false, m.p, NONE);
  free(m.p);
}

bool exports_portal_task_task_type_render(exports_portal_task_task_type_ctx_t *c,
                                          exports_portal_task_task_type_list_answer_t *settings,
                                          exports_portal_task_task_type_list_answer_t *answers,
                                          exports_portal_task_task_type_list_answer_t *prior,
                                          exports_portal_task_task_type_view_t *ret, task_plugin_string_t *err) {
  (void)c;
  evaluation e;
  evaluate(settings, answers, &e);
  if (e.r.count == 0) {
    *err = pp_dup("This request lists no documents; please ask your preparer to send it again.");
    pp_log(PORTAL_TASK_LOG_LEVEL_WARN, "render refused: the settings list no documents");
    return false;
  }
  memset(ret, 0, sizeof *ret);
  pp_section *s = pp_add_section(&ret->sections, "documents", "Documents we need");
  pp_buf intro = {0};
  if (e.r.note.len) pp_add_str(&intro, e.r.note);
  else pp_add(&intro, "Upload each document, or mark it not applicable and say why. A phone photo is fine.");
  s->intro = pp_take_opt(&intro);
  for (size_t i = 0; i < e.r.count; i++) {
    const item *it = &e.r.items[i];
    pp_buf label = {0};
    pp_add_str(&label, it->label);
    pp_field *f = pp_add_field(s, it->id, label.p, PORTAL_TASK_TYPES_KIND_UPLOAD);
    free(label.p);
    f->required = true;
    f->allow_na = it->allow_na;
    f->reviewed = true;
    f->accept = pp_some(kind_of(it)->accept);
    item_help(f, it, prior);
    compare_prior(it, answers, prior, &e.issues);
  }
  ret->done = (uint32_t)e.done;
  ret->total = (uint32_t)e.r.count;
  ret->issues = e.issues;
  pp_buf b = {0};
  pp_add(&b, "rendered ");
  pp_add_int(&b, (int64_t)e.r.count);
  pp_add(&b, " item(s): ");
  add_tally(&b, &e.t);
  pp_log_buf(PORTAL_TASK_LOG_LEVEL_INFO, &b);
  return true;
}

// ---------------------------------------------------------------- submit

static void refuse_missing(const evaluation *e, const pp_answers *answers, pp_issues *out) {
  for (size_t i = 0; i < e->r.count; i++) {
    const item *it = &e->r.items[i];
    const pp_answer *a = pp_find(answers, it->id);
    // Not applicable, wrong variants and returned files have their own issues.
    if (a && (a->value.tag != PORTAL_TASK_TYPES_VALUE_FILES || a->value.val.files.len)) continue;
    item_issue(out, it, true, it->allow_na ? "please upload it or mark it not applicable." : "please upload it.",
               NONE);
  }
}

bool exports_portal_task_task_type_submit(exports_portal_task_task_type_ctx_t *c,
                                          exports_portal_task_task_type_list_answer_t *settings,
                                          exports_portal_task_task_type_list_answer_t *answers,
                                          exports_portal_task_task_type_outcome_t *ret,
                                          exports_portal_task_task_type_list_issue_t *err) {
  (void)c;
  evaluation e;
  evaluate(settings, answers, &e);
  pp_keep_blocking(&e.issues);
  pp_issues *out = (pp_issues *)err;
  *out = e.issues;
  refuse_missing(&e, answers, out);
  if (e.r.count == 0) pp_report(out, NULL, true, "This request lists no documents; please ask your preparer.");
  if (err->len) {
    pp_buf b = {0};
    pp_add(&b, "submit refused: ");
    pp_add_int(&b, (int64_t)err->len);
    pp_add(&b, " blocking issue(s)");
    pp_log_buf(PORTAL_TASK_LOG_LEVEL_INFO, &b);
    return false;
  }
  bool all_done = e.done == e.r.count;
  pp_buf s = {0};
  pp_add_int(&s, (int64_t)e.r.count);
  pp_add(&s, all_done ? " document(s), all in: " : " document(s) sent: ");
  add_tally(&s, &e.t);
  pp_add(&s, ".");
  pp_log(PORTAL_TASK_LOG_LEVEL_INFO, s.p);
  ret->summary = pp_take(&s);
  ret->finish = all_done ? PORTAL_TASK_TYPES_FINISH_COMPLETED : PORTAL_TASK_TYPES_FINISH_AWAITING_REVIEW;
  ret->notify_staff = true;
  return true;
}
