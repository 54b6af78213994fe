/* fsio.h: the file operations that make writes survive a crash: write to a
 * temporary file, fsync it and its directory, rename into place. */
#ifndef AUDITRUN_FSIO_H
#define AUDITRUN_FSIO_H

#include <stddef.h>
#include <sys/types.h>

/* The modes new files and directories get: 0600 and 0700 unless widened
 * (reports list who can reach what; they are private to their owner). */
void fsio_set_modes(mode_t file_mode, mode_t dir_mode);
mode_t fsio_file_mode(void);

int fsio_mkdirs(const char *path, char *err, size_t errlen);
/* Atomically replace `path` with `data`. A symlink at `path` is replaced,
 * never followed. */
int fsio_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);
/* Create an empty temporary file beside `path` (same directory), name in
 * out: its fd, or -1. Nothing is ever opened by that name again: the fd is
 * what gets written, checked and named (fsio_link_noreplace). */
int fsio_temp_beside(const char *path, char *out, size_t outlen, char *err, size_t errlen);
/* Gives the file open as `fd` (created as `temp`) the name `to`, never
 * replacing anything there, then drops the name `temp`. Whatever was done
 * to the name `temp` meanwhile, the file that lands is the one written
 * through fd. Returns 0, -1 (error) or 1 (target exists). */
int fsio_link_noreplace(int fd, const char *temp, const char *to, char *err, size_t errlen);
/* Opens an existing regular file for reading, never through a symlink and
 * never a device or FIFO: the fd, or -1. */
int fsio_open_regular(const char *path, char *err, size_t errlen);
int fsio_fsync_file(const char *path, char *err, size_t errlen);
/* Cuts the regular file `path` back to its first `length` bytes in place
 * (never through a symlink) and fsyncs it. Shrinking a file needs no free
 * space and no file size allowance, so it works on a full disk. A file
 * shorter than `length` is an error, left as it is. */
int fsio_truncate(const char *path, off_t length, char *err, size_t errlen);
int fsio_fsync_dir_of(const char *path, char *err, size_t errlen);
/* Rename that fails with kind "exists" rather than replace; fsyncs the
 * directory after. Returns 0, -1 (error) or 1 (target exists). */
int fsio_rename_noreplace(const char *from, const char *to, char *err, size_t errlen);
/* An exclusive lock on `path` (created if missing), taken without waiting:
 * the fd holding it, -1 on error, -2 when another process holds it. The
 * kernel drops it when the fd is closed or the process dies, kill -9
 * included, so a crashed run never leaves a stale lock. A lock counts only
 * once the name still leads to the file locked: one its holder removed as
 * it was taken is let go and the name's new file tried. */
int fsio_lock(const char *path, char *err, size_t errlen);
/* Releases a lock fsio_lock took on `path` and removes its file: unlinked
 * while still held, then closed, so a process waiting to take it finds the
 * name gone or new and never shares it (fsio_lock checks the name still
 * leads to the file it locked). The fd is closed whatever happens.
 * Returns 0, or -1 when the file could not be removed. */
int fsio_unlock_remove(int fd, const char *path, char *err, size_t errlen);
/* Removes the temporary files fsio_temp_beside made in `dir` and a crash
 * left behind: all of them when `of` is NULL, else only those for the file
 * named `of` and files named after it ("OF.something"). Only safe while
 * nobody else writes those files (hold their lock). Returns how many were
 * removed, or -1. */
int fsio_remove_parts(const char *dir, const char *of, char *err, size_t errlen);

/* Temporary files a hard exit (the second Ctrl-C) removes: fsio_temp_beside
 * tracks what it makes, naming it or dropping its name forgets it, and
 * fsio_unlink_tracked (async-signal-safe) removes what is left. */
void fsio_track_temp(const char *path);
void fsio_untrack_temp(const char *path);
void fsio_unlink_tracked(void);

#endif
