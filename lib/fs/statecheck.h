/* statecheck: start-up safety of the state tree. taskgate refuses to serve from a
 * tree that other people could change or download:
 *
 *  - a tree whose root, or anything directly in it (the folders store_init makes,
 *    config.json), is group or world writable: on a shared host any other account
 *    could forge tasks, servers or tokens;
 *  - a tree inside the web server's document root with no deny rule: config.json,
 *    callback secrets and task inputs would be downloadable. The rule is an
 *    .htaccess holding "Require all denied" (or the old "Deny from all") in the
 *    tree or in a folder between it and the document root. A server that never
 *    reads .htaccess (SERVER_SOFTWARE lighttpd or nginx) gets no such excuse.
 *
 * DOCUMENT_ROOT is only known per request, so the check runs at the first request;
 * a safe verdict is cached for the life of the process (checked again only when the
 * document root changes), a refusal is not, so a fix takes effect at the next
 * request. A refusal is logged once per process as one line on stderr, which is the
 * web server's error log; the caller answers every request with 500 and the text.
 * Nothing here writes to the tree. */
#ifndef TASKGATE_STATECHECK_H
#define TASKGATE_STATECHECK_H

#include <stdbool.h>

/* Returns NULL when the tree at state_dir is safe to serve from, else one
 * sentence saying what is wrong and what to do about it (static storage, valid
 * until the next call). envp is the request's environment (DOCUMENT_ROOT,
 * SERVER_SOFTWARE); NULL or a missing DOCUMENT_ROOT skips the document-root test. */
const char *statecheck_request(const char *state_dir, char **envp);

/* True when the last statecheck_request() refused the tree: the process then does
 * no maintenance work either. */
bool statecheck_refused(void);

/* Forgets the cached verdict (tests; a process that was told the tree changed). */
void statecheck_reset(void);

#endif
