#include "sched/waiters.h"

#include <stdio.h>

#include "fs/store.h"
#include "model/config.h"

#define PRESENCE_MAX 64
#define WAITERS_LIMIT 256
#define CGI_WAITERS_DEFAULT 4

static int presence_fd = -1;
static int pool_ceiling;

static int try_slot(const char *kind, int n)
{
	char rel[64];
	snprintf(rel, sizeof rel, "locks/%s.%d", kind, n);
	return store_lock_path(rel, 0);
}

void waiters_register_process(int pool_max)
{
	pool_ceiling = pool_max > 0 && pool_max <= PRESENCE_MAX ? pool_max : 0;
	for (int n = 0; presence_fd < 0 && n < PRESENCE_MAX; n++)
		presence_fd = try_slot("proc", n);
}

/* Request processes alive: presence locks held by others, plus this one. */
static int processes_alive(void)
{
	int alive = 0;
	for (int n = 0; n < PRESENCE_MAX; n++) {
		int fd = try_slot("proc", n);
		if (fd >= 0)
			store_unlock(fd);
		else
			alive++; /* held: by this process or another (flock does not nest) */
	}
	return alive;
}

static int bound(bool cgi)
{
	long long set = config_sect_int("tasks", "maxWaiting", -1, -1, WAITERS_LIMIT);
	if (set >= 0)
		return (int)set;
	if (cgi)
		return CGI_WAITERS_DEFAULT;
	int alive = processes_alive();
	return (pool_ceiling > alive ? pool_ceiling : alive) - 1;
}

int waiters_enter(bool cgi)
{
	int limit = bound(cgi);
	for (int n = 0; n < limit; n++) {
		int fd = try_slot("wait", n);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

void waiters_leave(int slot)
{
	store_unlock(slot);
}

void waiters_forget_inherited(void)
{
	if (presence_fd >= 0)
		store_unlock(presence_fd); /* the parent's copy keeps its presence */
	presence_fd = -1;
}
