/* logfile: the only code that writes taskgate's own log file (config.json's
 * "logFile", by default log/taskgate.log in the state tree), where an operator on
 * shared hosting can read what the web server's error log hides from them. Every
 * line base/log writes to standard error is appended here too, by every program
 * (the FastCGI processes, their workers, the cron jobs).
 *
 * The file is rotated by size: a line that takes it to maxBytes or more renames
 * it to <file>.1 (and .1 to .2, up to keep), under a lock so that two processes
 * never rotate at once; every process notices the new file by its inode at its
 * next line. Lines are appended with O_APPEND, one write() each, so processes
 * never interleave within a line. A path that is not a regular file (a symlink, a
 * FIFO) is never written through. */
#ifndef TASKGATE_LOGFILE_H
#define TASKGATE_LOGFILE_H

/* Appends log lines to path too (NULL or "": none), rotating above max_bytes with
 * keep old files. Calling it again with other settings switches at once. */
void logfile_use(const char *path, long long max_bytes, int keep);

/* In a child just forked that closes its inherited descriptors: forgets the log
 * file's (the next line opens its own). */
void logfile_forget_inherited(void);

#endif
