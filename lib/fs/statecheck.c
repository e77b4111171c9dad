#include "fs/statecheck.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

#define HTACCESS_MAX (64 * 1024) /* an .htaccess larger than this is not read whole */
#define CHILDREN_MAX 256	 /* entries of the tree's root looked at */
#define VERDICT_MAX  1024

static bool modes_checked;
static char modes_verdict[VERDICT_MAX];
static bool docroot_checked;
static char docroot_seen[PATH_MAX];
static char docroot_verdict[VERDICT_MAX];
static const char *last;
static char logged[VERDICT_MAX];

static const char *env_find(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* The canonical form of path (symlinks resolved, as Apache's document root often
 * is not: /home -> /home2 on many hosts); the path itself without trailing slashes
 * when it cannot be resolved. */
static void canonical(const char *path, char out[PATH_MAX])
{
	if (realpath(path, out))
		return;
	snprintf(out, PATH_MAX, "%s", path);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

static bool writable_by_others(const struct stat *st)
{
	return (st->st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

/* Root of the tree and every entry directly in it. Deeper files inherit their
 * folder's protection: nobody else can replace them if they cannot write the
 * folder, and taskgate creates everything 0640/0750. */
static void check_modes(const char *state_dir)
{
	struct stat st;
	modes_verdict[0] = '\0';
	if (stat(state_dir, &st) < 0)
		return; /* no tree yet: the config check says "run init" */
	if (writable_by_others(&st)) {
		snprintf(modes_verdict, sizeof modes_verdict,
			 "the state tree %s is group or world writable (mode %04o), so other "
			 "accounts could change tasks and tokens; fix it with: chmod -R go-w %s",
			 state_dir, (unsigned)(st.st_mode & 07777), state_dir);
		return;
	}
	DIR *d = opendir(state_dir);
	if (!d)
		return;
	struct dirent *de;
	char path[PATH_MAX];
	for (int n = 0; n < CHILDREN_MAX && (de = readdir(d)) != NULL; n++) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof path, "%s/%s", state_dir, de->d_name) >= (int)sizeof path)
			continue;
		if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
			continue;
		if (writable_by_others(&st)) {
			snprintf(modes_verdict, sizeof modes_verdict,
				 "%s in the state tree is group or world writable (mode %04o), "
				 "so other accounts could change tasks and tokens; fix it with: "
				 "chmod -R go-w %s",
				 path, (unsigned)(st.st_mode & 07777), state_dir);
			break;
		}
	}
	closedir(d);
}

/* True if line (one line of an .htaccess) is a deny-everything directive:
 * "Require all denied" or "Deny from all", any case and spacing. A directive
 * inside a <Files> or <If> section would count too; this is a guard against
 * forgetting the rule, not a parser of Apache's configuration. */
static bool line_denies(const char *line, size_t len)
{
	char words[3][16];
	int nw = 0;
	size_t i = 0;
	while (nw < 3) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len || line[i] == '#')
			break;
		size_t w = 0;
		while (i < len && !isspace((unsigned char)line[i])) {
			if (w + 1 < sizeof words[0])
				words[nw][w++] = (char)tolower((unsigned char)line[i]);
			i++;
		}
		words[nw++][w] = '\0';
	}
	while (i < len && isspace((unsigned char)line[i]))
		i++;
	if (nw != 3 || (i < len && line[i] != '#'))
		return false;
	return (strcmp(words[0], "require") == 0 && strcmp(words[1], "all") == 0 &&
		strcmp(words[2], "denied") == 0) ||
	       (strcmp(words[0], "deny") == 0 && strcmp(words[1], "from") == 0 &&
		strcmp(words[2], "all") == 0);
}

static bool htaccess_denies(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/.htaccess", dir) >= (int)sizeof path)
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	char *text = malloc(HTACCESS_MAX);
	bool found = false;
	ssize_t n = 0, r;
	while (text && n < HTACCESS_MAX &&
	       (r = read(fd, text + n, (size_t)(HTACCESS_MAX - n))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += r;
	}
	close(fd);
	for (ssize_t start = 0; text && start < n && !found;) {
		ssize_t end = start;
		while (end < n && text[end] != '\n')
			end++;
		found = line_denies(text + start, (size_t)(end - start));
		start = end + 1;
	}
	free(text);
	return found;
}

static bool server_reads_htaccess(const char *software)
{
	if (!software)
		return true; /* unknown: run by hand or by an Apache-like server */
	return strncasecmp(software, "lighttpd", 8) != 0 && strncasecmp(software, "nginx", 5) != 0;
}

static void check_docroot(const char *state_dir, const char *docroot, const char *software)
{
	char root[PATH_MAX], state[PATH_MAX], dir[PATH_MAX];
	docroot_verdict[0] = '\0';
	canonical(docroot, root);
	canonical(state_dir, state);
	size_t rn = strlen(root);
	if (strcmp(root, "/") == 0)
		rn = 0; /* every path is inside "/"; compare against "" + '/' */
	bool inside = strncmp(state, root, rn) == 0 && (state[rn] == '/' || state[rn] == '\0');
	if (!inside)
		return;
	bool reads = server_reads_htaccess(software);
	snprintf(dir, sizeof dir, "%s", state);
	/* From the tree up to the document root, both included; bounded by depth. */
	for (int depth = 0; reads && depth < PATH_MAX / 2; depth++) {
		if (htaccess_denies(dir))
			return;
		size_t dn = strlen(dir);
		if (dn <= rn || dn <= 1)
			break;
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	if (reads)
		snprintf(docroot_verdict, sizeof docroot_verdict,
			 "the state tree %s is inside the document root %s and nothing denies "
			 "web access to it, so tokens, callback secrets and task inputs could be "
			 "downloaded; move the tree outside the document root and set STATE_DIR, "
			 "or put 'Require all denied' in %s/.htaccess",
			 state, root, state);
	else
		snprintf(docroot_verdict, sizeof docroot_verdict,
			 "the state tree %s is inside the document root %s and %s does not read "
			 ".htaccess files, so tokens, callback secrets and task inputs could be "
			 "downloaded; move the tree outside the document root and set STATE_DIR",
			 state, root, software);
}

const char *statecheck_request(const char *state_dir, char **envp)
{
	/* Only a safe verdict is kept: a refused tree is looked at again on every
	 * request, so the operator's fix (chmod, an .htaccess) takes effect at once and
	 * not when the web server next replaces its processes. */
	if (last) {
		modes_checked = false;
		docroot_checked = false;
	}
	if (!modes_checked) {
		check_modes(state_dir);
		modes_checked = true;
	}
	const char *docroot = env_find(envp, "DOCUMENT_ROOT");
	if (!docroot || !*docroot) {
		docroot_verdict[0] = '\0';
		docroot_seen[0] = '\0';
		docroot_checked = false;
	} else if (!docroot_checked || strcmp(docroot, docroot_seen) != 0) {
		check_docroot(state_dir, docroot, env_find(envp, "SERVER_SOFTWARE"));
		snprintf(docroot_seen, sizeof docroot_seen, "%s", docroot);
		docroot_checked = true;
	}
	last = modes_verdict[0] ? modes_verdict : docroot_verdict[0] ? docroot_verdict : NULL;
	if (last && strcmp(last, logged) != 0) {
		log_error("refusing to serve: %s", last);
		snprintf(logged, sizeof logged, "%s", last);
	}
	return last;
}

bool statecheck_refused(void)
{
	return last != NULL;
}

void statecheck_reset(void)
{
	modes_checked = false;
	docroot_checked = false;
	docroot_seen[0] = '\0';
	modes_verdict[0] = '\0';
	docroot_verdict[0] = '\0';
	logged[0] = '\0';
	last = NULL;
}
