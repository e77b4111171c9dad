/* taskview: the API form of a stored task, copied from the file's bytes.
 *
 * GET /api/v2/tasks/:id is the hottest read. Building a yajl tree, then a struct
 * task, then generating the API form from it cost most of that request; here one
 * streaming yajl pass copies the stored document to the generator, keeping only
 * the members task.c's member table marks public (the same table task_to_public
 * writes by). The stored form is task_to_doc's output, so the copy equals
 * task_to_public's (tests/unit/test_taskview.c holds them to the same bytes). */
#ifndef TASKGATE_TASKVIEW_H
#define TASKGATE_TASKVIEW_H

#include <stddef.h>

#include "base/json.h"

/* Appends the public form of the stored task document to out. -1 when the text
 * is not a JSON object (a damaged file) or the generator failed. */
int taskview_public(const char *stored, size_t len, struct jgen *out);

#endif
