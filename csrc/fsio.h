/* fsio.h: the file operations that make writes survive a crash: write to a
 * temporary file, fsync it and its directory, rename into place. */
#ifndef AUDITRUN_FSIO_H
#define AUDITRUN_FSIO_H

#include <stddef.h>

int fsio_mkdirs(const char *path, char *err, size_t errlen);
/* Atomically replace `path` with `data`. */
int fsio_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);
/* Create an empty temporary file beside `path` (same directory), name in out. */
int fsio_temp_beside(const char *path, char *out, size_t outlen, char *err, size_t errlen);
int fsio_fsync_file(const char *path, char *err, size_t errlen);
int fsio_fsync_dir_of(const char *path, char *err, size_t errlen);
/* Rename that fails with kind "exists" rather than replace; fsyncs the
 * directory after. Returns 0, -1 (error) or 1 (target exists). */
int fsio_rename_noreplace(const char *from, const char *to, char *err, size_t errlen);
/* An exclusive lock on `path` (created if missing), taken without waiting:
 * the fd holding it, -1 on error, -2 when another process holds it. The
 * kernel drops it when the fd is closed or the process dies, kill -9
 * included, so a crashed run never leaves a stale lock. */
int fsio_lock(const char *path, char *err, size_t errlen);
/* Removes the temporary files fsio_temp_beside made in `dir` and a crash
 * left behind: only safe while nobody else writes there (hold its lock).
 * Returns how many were removed, or -1. */
int fsio_remove_parts(const char *dir, char *err, size_t errlen);

#endif
