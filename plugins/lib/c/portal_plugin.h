// Helpers for Portal task-type plugins written in C against the bindings that
// `wit-bindgen c` generates for plugins/wit/v0.1 (task_plugin.h).
//
// Memory: everything a plugin returns is freed by the generated post-return
// code, so every string and list handed back must be heap memory; the
// builders here always copy. Arguments are never freed: the host runs each
// call in a fresh instance and drops it afterwards.
//
// No stdio: printf-family functions pull WASI imports into the module (and
// the host grants none), so text is built with pp_buf instead.
#ifndef PORTAL_PLUGIN_H
#define PORTAL_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task_plugin.h"

typedef task_plugin_string_t pp_str;
typedef task_plugin_option_string_t pp_opt;
typedef portal_task_types_answer_t pp_answer;
typedef portal_task_types_value_t pp_value;
typedef portal_task_types_field_t pp_field;
typedef portal_task_types_section_t pp_section;
typedef portal_task_types_issue_t pp_issue;
typedef exports_portal_task_task_type_list_answer_t pp_answers;
// The exports' list types (exports_portal_task_task_type_list_*_t) have the
// same layout as these: cast a pointer to one into the other.
typedef portal_task_types_list_issue_t pp_issues;
typedef portal_task_types_list_section_t pp_sections;

// ---- strings

// A heap copy of a NUL-terminated string (NULL gives "").
pp_str pp_dup(const char *s);
// A view of a NUL-terminated string (no copy: never return it).
pp_str pp_view(const char *s);
// `some(copy of s)`, or `none` for NULL.
pp_opt pp_some(const char *s);
// Whether `s` holds exactly the bytes of `c`.
bool pp_eq(pp_str s, const char *c);
// `s` without leading and trailing spaces, tabs and line breaks (a view).
pp_str pp_trim(pp_str s);
// Whether `s` ends with `suffix`, ignoring ASCII case.
bool pp_ends_with_ci(pp_str s, const char *suffix);
// Whether `s` contains `needle`, ignoring ASCII case.
bool pp_contains_ci(pp_str s, const char *needle);

// A growing text buffer, always NUL-terminated.
typedef struct {
  char *p;
  size_t len;
  size_t cap;
} pp_buf;

void pp_add(pp_buf *b, const char *s);
void pp_addn(pp_buf *b, const char *s, size_t n);
void pp_add_str(pp_buf *b, pp_str s);
void pp_add_int(pp_buf *b, int64_t n);
// "$1,234.56" (and "-$5.00").
void pp_add_money(pp_buf *b, int64_t cents);
// "October 15, 2026" for a valid YYYY-MM-DD, else the text as given.
void pp_add_long_date(pp_buf *b, pp_str date);
// Hands the text over as a string; the buffer is empty afterwards.
pp_str pp_take(pp_buf *b);
// The text as an option (for `help`/`intro`); none when empty.
pp_opt pp_take_opt(pp_buf *b);

// ---- answers

// The last answer to `field` in the list, or NULL.
const pp_answer *pp_find(const pp_answers *list, const char *field);
// The answer's value when it has variant `tag` (PORTAL_TASK_TYPES_VALUE_*).
const pp_value *pp_get(const pp_answers *list, const char *field, uint8_t tag);
// The first picked entry of a choice answer, or an empty string.
pp_str pp_picked(const pp_answers *list, const char *field);
// Whether a multi-choice answer picked `choice`.
bool pp_has_pick(const pp_answers *list, const char *field, const char *choice);
// Whether a text answer has something besides spaces.
bool pp_has_text(const pp_answers *list, const char *field);

// A calendar date YYYY-MM-DD; false for anything else.
bool pp_date(pp_str s, int *year, int *month, int *day);

// ---- building results

// Fills `describe`'s answer.
void pp_describe(portal_task_types_info_t *ret, const char *id, const char *name, const char *version,
                 const char *summary);

// Appends a field with the given id, label and kind (visible, not required,
// everything else empty) and returns it for the caller to adjust.
pp_field *pp_add_field(pp_section *s, const char *id, const char *label,
                       portal_task_types_kind_t kind);
// Sets a field's choices from a NULL-terminated array.
void pp_set_choices(pp_field *f, const char *const *choices);
pp_section *pp_add_section(pp_sections *list, const char *id, const char *title);
// Appends an issue; `field` may be NULL (about the whole task). Takes
// ownership of `message`.
void pp_add_issue(pp_issues *list, const char *field, bool blocking, pp_str message);
// The same with a plain message.
void pp_report(pp_issues *list, const char *field, bool blocking, const char *message);
size_t pp_blocking(const pp_issues *list);
// Drops the warnings from the list, keeping its blocking issues in order.
void pp_keep_blocking(pp_issues *list);

// ---- log

void pp_log(portal_task_log_level_t level, const char *message);
// Logs the buffer's text and empties it.
void pp_log_buf(portal_task_log_level_t level, pp_buf *b);

#endif
