/* journal_claim: what it costs a process to take a journal slot whose run already
 * holds N records (every CGI request and every new worker takes one): through the
 * run-end hint, and by walking the run record by record (the hint removed before
 * each claim, which is what a process finds after a restart). Prints both and
 * their ratio. Usage: journal_claim [records (5000)] [claims (200)]. The tree is a
 * temporary folder under /tmp, removed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "fs/journal.h"
#include "fs/store.h"

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Milliseconds per claim; remove_hint: the walk instead of the hint. */
static double claims_ms(const char *root, int claims, bool remove_hint)
{
	char hint[4200];
	snprintf(hint, sizeof hint, "%s/journal/%s.0.end", root, host_name());
	double t0 = seconds();
	for (int i = 0; i < claims; i++) {
		journal_close();
		if (remove_hint)
			unlink(hint);
		if (store_init(root) != 0 || journal_open() != 0) {
			fprintf(stderr, "journal_claim: cannot open the journal under %s\n", root);
			exit(1);
		}
	}
	return (seconds() - t0) * 1000 / claims;
}

int main(int argc, char **argv)
{
	int records = argc > 1 ? atoi(argv[1]) : 5000;
	int claims = argc > 2 ? atoi(argv[2]) : 200;
	if (records < 1 || records > 12000 || claims < 1 || claims > 100000) {
		fputs("usage: journal_claim [records 1..12000] [claims 1..100000]\n", stderr);
		return 2;
	}
	char root[] = "/tmp/taskgate-claim.XXXXXX";
	if (!mkdtemp(root))
		return 1;
	journal_enable(true);
	journal_set_batch(false);
	if (store_init(root) != 0)
		return 1;
	char body[600];
	memset(body, 'x', sizeof body);
	memcpy(body, "{\"a\":\"", 6);
	memcpy(body + sizeof body - 3, "\"}", 3);
	for (int i = 0; i < records; i++)
		if (store_put("servers", "a", body, strlen(body)) != STORE_OK)
			return 1;
	double hint = claims_ms(root, claims, false);
	double walk = claims_ms(root, claims, true);
	journal_close();
	char label[64];
	snprintf(label, sizeof label, "journal claim ms, hint vs walk (%d rec)", records);
	printf("%-44s %10.3f %10.3f %7.3f %s\n", label, hint, walk, walk > 0 ? hint / walk : 0,
	       "(kept for <= 0.1)");
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : 1;
}
