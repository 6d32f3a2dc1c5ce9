// See portal_plugin.h.
#include "portal_plugin.h"

#include <stdlib.h>
#include <string.h>

// Out of memory inside the host's limit: stop the call (the host reports a
// failed call and keeps the client's answers).
static void *grow(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (!q) __builtin_trap();
  return q;
}

// Makes room for one more element of `size` bytes in a list of `len` that
// was grown only by this function (capacity 4, 8, 16, ...).
static void *grow_list(void *ptr, size_t len, size_t size) {
  if (len == 0) return grow(ptr, 4 * size);
  if (len >= 4 && (len & (len - 1)) == 0) return grow(ptr, 2 * len * size);
  return ptr;
}

// ---- strings

static pp_str dup_n(const char *s, size_t n) {
  pp_str r = {NULL, n};
  if (n) {
    r.ptr = grow(NULL, n);
    memcpy(r.ptr, s, n);
  }
  return r;
}

pp_str pp_dup(const char *s) { return dup_n(s ? s : "", s ? strlen(s) : 0); }

pp_str pp_view(const char *s) { return (pp_str){(uint8_t *)s, strlen(s)}; }

pp_opt pp_some(const char *s) {
  pp_opt o = {false, {NULL, 0}};
  if (s) {
    o.is_some = true;
    o.val = pp_dup(s);
  }
  return o;
}

bool pp_eq(pp_str s, const char *c) {
  size_t n = strlen(c);
  return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static bool space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

pp_str pp_trim(pp_str s) {
  while (s.len && space(s.ptr[0])) {
    s.ptr++;
    s.len--;
  }
  while (s.len && space(s.ptr[s.len - 1])) s.len--;
  return s;
}

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool same_ci(const uint8_t *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower((uint8_t)b[i])) return false;
  return true;
}

bool pp_ends_with_ci(pp_str s, const char *suffix) {
  size_t n = strlen(suffix);
  return s.len >= n && same_ci(s.ptr + s.len - n, suffix, n);
}

bool pp_contains_ci(pp_str s, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; n && i + n <= s.len; i++)
    if (same_ci(s.ptr + i, needle, n)) return true;
  return false;
}

// ---- text buffer

void pp_addn(pp_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = grow(b->p, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void pp_add(pp_buf *b, const char *s) { pp_addn(b, s, strlen(s)); }

void pp_add_str(pp_buf *b, pp_str s) { pp_addn(b, (const char *)s.ptr, s.len); }

void pp_add_int(pp_buf *b, int64_t n) {
  char digits[24];
  size_t i = sizeof digits;
  uint64_t u = n < 0 ? (uint64_t)(-(n + 1)) + 1 : (uint64_t)n;
  do {
    digits[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (n < 0) digits[--i] = '-';
  pp_addn(b, digits + i, sizeof digits - i);
}

void pp_add_money(pp_buf *b, int64_t cents) {
  uint64_t u = cents < 0 ? (uint64_t)(-(cents + 1)) + 1 : (uint64_t)cents;
  uint64_t dollars = u / 100;
  unsigned rest = (unsigned)(u % 100);
  char digits[40];
  size_t i = sizeof digits, group = 0;
  do {
    if (group && group % 3 == 0) digits[--i] = ',';
    digits[--i] = (char)('0' + dollars % 10);
    dollars /= 10;
    group++;
  } while (dollars);
  pp_add(b, cents < 0 ? "-$" : "$");
  pp_addn(b, digits + i, sizeof digits - i);
  char tail[3] = {'.', (char)('0' + rest / 10), (char)('0' + rest % 10)};
  pp_addn(b, tail, 3);
}

static const char *const MONTHS[] = {"January", "February", "March",     "April",   "May",      "June",
                                     "July",    "August",   "September", "October", "November", "December"};

void pp_add_long_date(pp_buf *b, pp_str date) {
  int y, m, d;
  if (!pp_date(date, &y, &m, &d)) {
    pp_add_str(b, date);
    return;
  }
  pp_add(b, MONTHS[m - 1]);
  pp_add(b, " ");
  pp_add_int(b, d);
  pp_add(b, ", ");
  pp_add_int(b, y);
}

pp_str pp_take(pp_buf *b) {
  pp_str s = {(uint8_t *)b->p, b->len};
  if (!b->len) {
    free(b->p);
    s.ptr = NULL;
  }
  *b = (pp_buf){0};
  return s;
}

pp_opt pp_take_opt(pp_buf *b) {
  pp_opt o = {b->len > 0, pp_take(b)};
  return o;
}

// ---- answers

const pp_answer *pp_find(const pp_answers *list, const char *field) {
  const pp_answer *found = NULL;
  for (size_t i = 0; list && i < list->len; i++)
    if (pp_eq(list->ptr[i].field, field)) found = &list->ptr[i];
  return found;
}

const pp_value *pp_get(const pp_answers *list, const char *field, uint8_t tag) {
  const pp_answer *a = pp_find(list, field);
  return a && a->value.tag == tag ? &a->value : NULL;
}

pp_str pp_picked(const pp_answers *list, const char *field) {
  const pp_value *v = pp_get(list, field, PORTAL_TASK_TYPES_VALUE_PICKED);
  pp_str none = {NULL, 0};
  return v && v->val.picked.len ? v->val.picked.ptr[0] : none;
}

bool pp_has_pick(const pp_answers *list, const char *field, const char *choice) {
  const pp_value *v = pp_get(list, field, PORTAL_TASK_TYPES_VALUE_PICKED);
  for (size_t i = 0; v && i < v->val.picked.len; i++)
    if (pp_eq(v->val.picked.ptr[i], choice)) return true;
  return false;
}

bool pp_has_text(const pp_answers *list, const char *field) {
  const pp_value *v = pp_get(list, field, PORTAL_TASK_TYPES_VALUE_TEXT);
  return v && pp_trim(v->val.text).len > 0;
}

static int number(const uint8_t *p, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

bool pp_date(pp_str s, int *year, int *month, int *day) {
  if (s.len != 10 || s.ptr[4] != '-' || s.ptr[7] != '-') return false;
  int y = number(s.ptr, 4), m = number(s.ptr + 5, 2), d = number(s.ptr + 8, 2);
  static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > days[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return false;
  *year = y;
  *month = m;
  *day = d;
  return true;
}

// ---- building results

void pp_describe(portal_task_types_info_t *ret, const char *id, const char *name, const char *version,
                 const char *summary) {
  ret->id = pp_dup(id);
  ret->name = pp_dup(name);
  ret->version = pp_dup(version);
  ret->summary = pp_dup(summary);
}

pp_field *pp_add_field(pp_section *s, const char *id, const char *label, portal_task_types_kind_t kind) {
  s->fields.ptr = grow_list(s->fields.ptr, s->fields.len, sizeof(pp_field));
  pp_field *f = &s->fields.ptr[s->fields.len++];
  memset(f, 0, sizeof *f);
  f->id = pp_dup(id);
  f->label = pp_dup(label);
  f->kind = kind;
  f->visible = true;
  return f;
}

void pp_set_choices(pp_field *f, const char *const *choices) {
  size_t n = 0;
  while (choices[n]) n++;
  f->choices.ptr = grow(NULL, n * sizeof(pp_str));
  f->choices.len = n;
  for (size_t i = 0; i < n; i++) f->choices.ptr[i] = pp_dup(choices[i]);
}

pp_section *pp_add_section(pp_sections *list, const char *id, const char *title) {
  list->ptr = grow_list(list->ptr, list->len, sizeof(pp_section));
  pp_section *s = &list->ptr[list->len++];
  memset(s, 0, sizeof *s);
  s->id = pp_dup(id);
  s->title = pp_dup(title);
  return s;
}

void pp_add_issue(pp_issues *list, const char *field, bool blocking, pp_str message) {
  list->ptr = grow_list(list->ptr, list->len, sizeof(pp_issue));
  pp_issue *i = &list->ptr[list->len++];
  i->field = pp_some(field);
  i->message = message;
  i->blocking = blocking;
}

void pp_report(pp_issues *list, const char *field, bool blocking, const char *message) {
  pp_add_issue(list, field, blocking, pp_dup(message));
}

size_t pp_blocking(const pp_issues *list) {
  size_t n = 0;
  for (size_t i = 0; i < list->len; i++) n += list->ptr[i].blocking;
  return n;
}

void pp_keep_blocking(pp_issues *list) {
  size_t kept = 0;
  for (size_t i = 0; i < list->len; i++) {
    if (list->ptr[i].blocking) list->ptr[kept++] = list->ptr[i];
    else portal_task_types_issue_free(&list->ptr[i]);
  }
  list->len = kept;
}

// ---- log

void pp_log(portal_task_log_level_t level, const char *message) {
  pp_str s = pp_view(message);
  portal_task_log_write(level, &s);
}

void pp_log_buf(portal_task_log_level_t level, pp_buf *b) {
  pp_log(level, b->p ? b->p : "");
  free(b->p);
  *b = (pp_buf){0};
}
