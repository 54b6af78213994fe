/* fsio.c: crash-safe file primitives. A file is complete on disk before its
 * name appears, and the name is durable once the directory is fsynced, so a
 * kill -9 at any moment leaves either the old state or the new one. */
#define _GNU_SOURCE
#include "fsio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t file_mode = 0600, dir_mode = 0700;

void fsio_set_modes(mode_t fmode, mode_t dmode) {
  file_mode = fmode & 0777;
  dir_mode = dmode & 0777;
}

mode_t fsio_file_mode(void) { return file_mode; }

static void dir_of(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(out, outlen, ".");
  else if (slash == path) snprintf(out, outlen, "/");
  else snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

int fsio_mkdirs(const char *path, char *err, size_t errlen) {
  char buf[PATH_MAX];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) {
    snprintf(err, errlen, "bad directory name");
    return -1;
  }
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, dir_mode) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
        return -1;
      }
      *p = c;
      if (c == '\0') break;
    }
  }
  {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
      snprintf(err, errlen, "%s exists and is not a directory", path);
      return -1;
    }
  }
  return 0;
}

int fsio_open_regular(const char *path, char *err, size_t errlen) {
  struct stat st;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) snprintf(err, errlen, "%s is a symbolic link: refusing to follow it", path);
    else snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

/* Opens path read-only with flags added and syncs it to disk; what ("" or
   "directory ") goes before the path in the error. */
static int sync_path(const char *path, int flags, const char *what, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "cannot sync %s%s: %s", what, path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

int fsio_fsync_file(const char *path, char *err, size_t errlen) {
  return sync_path(path, O_NOFOLLOW, "", err, errlen);
}

int fsio_truncate(const char *path, off_t length, char *err, size_t errlen) {
  struct stat st;
  int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot cut %s back: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    return -1;
  }
  if (st.st_size < length) {
    snprintf(err, errlen, "%s has %lld bytes, fewer than the %lld to keep", path, (long long)st.st_size,
             (long long)length);
    close(fd);
    return -1;
  }
  if (ftruncate(fd, length) != 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "cannot cut %s back to %lld bytes: %s", path, (long long)length, strerror(errno));
    close(fd);
    return -1;
  }
  if (close(fd) != 0) {
    snprintf(err, errlen, "cannot cut %s back to %lld bytes: %s", path, (long long)length, strerror(errno));
    return -1;
  }
  return 0;
}

int fsio_fsync_dir_of(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  dir_of(path, dir, sizeof dir);
  return sync_path(dir, O_DIRECTORY, "directory ", err, errlen);
}

#define TEMP_BASE_MAX 200

int fsio_temp_beside(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  char dir[PATH_MAX];
  const char *base = strrchr(path, '/');
  int fd;
  base = base ? base + 1 : path;
  dir_of(path, dir, sizeof dir);
  /* A dot name so listings and globs of finished files skip it. The name
   * is cut at TEMP_BASE_MAX so that it stays within NAME_MAX (255). */
  if ((size_t)snprintf(out, outlen, "%s/.%.*s.part-XXXXXX", dir, TEMP_BASE_MAX, base) >= outlen) {
    snprintf(err, errlen, "path too long: %s", path);
    return -1;
  }
  /* mkostemp creates with O_EXCL (never through a symlink), mode 0600. */
  fd = mkostemp(out, O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir, strerror(errno));
    return -1;
  }
  if (file_mode != 0600 && fchmod(fd, file_mode) != 0) {
    snprintf(err, errlen, "cannot set the mode of %s: %s", out, strerror(errno));
    close(fd);
    unlink(out);
    return -1;
  }
  fsio_track_temp(out);
  return fd;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Drops the name `temp` if it still names the file open as fd. */
static void unlink_if_ours(int fd, const char *temp) {
  struct stat mine, there;
  fsio_untrack_temp(temp);
  if (fstat(fd, &mine) == 0 && lstat(temp, &there) == 0 && same_file(&mine, &there)) unlink(temp);
}

int fsio_link_noreplace(int fd, const char *temp, const char *to, char *err, size_t errlen) {
  char self[64];
  struct stat mine, there;
  if (fstat(fd, &mine) != 0) {
    snprintf(err, errlen, "cannot read the temporary file for %s: %s", to, strerror(errno));
    return -1;
  }
  /* linkat through /proc names the inode we hold, whatever sits at the
   * temporary name now; like RENAME_NOREPLACE it refuses an existing name. */
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, self, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0) {
    unlink_if_ours(fd, temp);
    return fsio_fsync_dir_of(to, err, errlen);
  }
  if (errno == EEXIST) {
    snprintf(err, errlen, "%s already exists", to);
    return 1;
  }
  if (fstat(fd, &mine) == 0 && mine.st_nlink == 0) {
    /* Someone removed or replaced the temporary name: what sits there now
     * is not what we wrote, and must not get the final name. */
    snprintf(err, errlen, "the temporary file for %s was removed or replaced while it was written", to);
    return -1;
  }
  if (errno != ENOENT && errno != EPERM && errno != EXDEV && errno != ENOSYS) {
    snprintf(err, errlen, "cannot name %s: %s", to, strerror(errno));
    return -1;
  }
  /* No /proc, or a file system that will not link: rename the temporary
   * name, then check that what landed is the file we wrote. */
  {
    int rc = fsio_rename_noreplace(temp, to, err, errlen);
    if (rc != 0) return rc;
    if (lstat(to, &there) != 0 || !same_file(&mine, &there)) {
      snprintf(err, errlen, "the temporary file for %s was removed or replaced while it was written", to);
      unlink(to);
      return -1;
    }
  }
  return 0;
}

int fsio_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen) {
  char tmp[PATH_MAX];
  int fd, rc = -1;
  size_t off = 0;
  fd = fsio_temp_beside(path, tmp, sizeof tmp, err, errlen);
  if (fd < 0) return -1;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      goto fail;
    }
    off += (size_t)n;
  }
  if (fsync(fd) != 0) goto fail;
  /* rename replaces a symlink at path; it never writes through one. The
   * temporary name is checked to still be our file first. */
  {
    struct stat mine, there;
    if (fstat(fd, &mine) != 0 || lstat(tmp, &there) != 0 || !same_file(&mine, &there)) {
      errno = EEXIST;
      goto fail;
    }
  }
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto fail;
  fsio_untrack_temp(tmp);
  rc = fsio_fsync_dir_of(path, err, errlen);
  return rc;
fail:
  snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
  if (fd >= 0) {
    unlink_if_ours(fd, tmp);
    close(fd);
  }
  return -1;
}

int fsio_rename_noreplace(const char *from, const char *to, char *err, size_t errlen) {
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      snprintf(err, errlen, "%s already exists", to);
      return 1;
    }
    if (errno != EINVAL && errno != ENOSYS) {
      snprintf(err, errlen, "cannot rename %s to %s: %s", from, to, strerror(errno));
      return -1;
    }
    /* Filesystems without RENAME_NOREPLACE: link() refuses an existing name
     * just the same. */
    if (link(from, to) != 0) {
      int e = errno;
      snprintf(err, errlen, e == EEXIST ? "%s already exists" : "cannot rename to %s: %s",
               to, strerror(e));
      return e == EEXIST ? 1 : -1;
    }
    unlink(from);
  }
  fsio_untrack_temp(from);
  return fsio_fsync_dir_of(to, err, errlen);
}

/* Whether fd is the file path names now (not following a symbolic link). */
static int names_file(const char *path, int fd) {
  struct stat at, held;
  return lstat(path, &at) == 0 && fstat(fd, &held) == 0 && at.st_dev == held.st_dev && at.st_ino == held.st_ino;
}

/* A holder that is done may unlink the lock file while it still holds it
 * (fsio_unlock_remove). Another process may have opened that file just
 * before and get its lock just after the holder closed it: it would hold a
 * file no name leads to, while a third process creates and locks a new one.
 * So a lock counts only if the name still leads to the locked file;
 * otherwise this tries again with the file the name leads to now. Each try
 * is a step of someone else's progress (an unlink, a new file), so a few
 * suffice; LOCK_TRIES bounds them against a name that keeps changing. */
#define LOCK_TRIES 100

int fsio_lock(const char *path, char *err, size_t errlen) {
  for (int tries = 0; tries < LOCK_TRIES; tries++) {
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, file_mode);
    if (fd < 0) {
      snprintf(err, errlen, errno == ELOOP ? "the lock file %s is a symbolic link: refusing to follow it"
                                           : "cannot open the lock file %s: %s", path, strerror(errno));
      return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      snprintf(err, errlen, "the lock file %s is not a regular file", path);
      close(fd);
      return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int busy = errno == EWOULDBLOCK;
      snprintf(err, errlen, busy ? "%s is held by another process" : "cannot lock %s: %s", path, strerror(errno));
      close(fd);
      return busy ? -2 : -1;
    }
    if (names_file(path, fd)) return fd;
    close(fd);  /* its holder removed it as we came: the name's file now */
  }
  snprintf(err, errlen, "the lock file %s keeps being replaced", path);
  return -1;
}

int fsio_unlock_remove(int fd, const char *path, char *err, size_t errlen) {
  int rc = 0;
  /* Only the file this fd locks: a name someone replaced is not ours. */
  if (names_file(path, fd) && unlink(path) != 0 && errno != ENOENT) {
    snprintf(err, errlen, "cannot remove the lock file %s: %s", path, strerror(errno));
    rc = -1;
  }
  close(fd);
  return rc;
}

/* ".NAME.part-XXXXXX", as fsio_temp_beside makes them. */
static int is_part_name(const char *name) {
  size_t len = strlen(name);
  const char *tail = len > 12 ? name + len - 12 : NULL;
  if (name[0] != '.' || !tail || strncmp(tail, ".part-", 6) != 0 || tail == name) return 0;
  for (const char *p = tail + 6; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) return 0;
  return 1;
}

/* Whether a temporary file (a part name) is one for the file `of` or for a
 * file named after it ("OF.something"): the NAME between the leading dot and
 * ".part-XXXXXX" is `of`, starts with "of.", or is a cut-off start of them. */
static int is_part_of(const char *name, const char *of) {
  size_t len = strlen(name) - 13, olen = strlen(of);
  const char *target = name + 1;
  if (len == TEMP_BASE_MAX && strncmp(target, of, len) == 0) return 1;  /* cut off: of is longer */
  if (len < olen || strncmp(target, of, olen) != 0) return 0;
  return len == olen || target[olen] == '.';
}

int fsio_remove_parts(const char *dir, const char *of, char *err, size_t errlen) {
  int removed = 0, rc = -1;
  char path[PATH_MAX];
  struct dirent *e;
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(err, errlen, "cannot read the directory %s: %s", dir, strerror(errno));
    return -1;
  }
  while ((errno = 0, e = readdir(d)) != NULL) {
    if (!is_part_name(e->d_name) || (of && !is_part_of(e->d_name, of))) continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
    if (unlink(path) == 0) removed++;
    else if (errno != ENOENT) {
      snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
      goto done;
    }
  }
  if (errno != 0) {
    snprintf(err, errlen, "cannot read the directory %s: %s", dir, strerror(errno));
    goto done;
  }
  rc = removed;
done:
  closedir(d);
  return rc;
}

/* ---- temporary files a hard exit removes ----------------------------------
 * The second Ctrl-C ends the process from inside the signal handler, so no
 * Lua cleanup runs: the handler unlinks the temporary files listed here.
 * A slot is written before it is marked used and marked free before it is
 * reused, so the handler never reads half a path. A full table only means
 * a file is left for the next run's sweep (fsio_remove_parts). */
#define FSIO_TRACKED 64
static char tracked[FSIO_TRACKED][PATH_MAX];
static volatile sig_atomic_t tracked_used[FSIO_TRACKED];

void fsio_track_temp(const char *path) {
  size_t len = strlen(path);
  if (len >= PATH_MAX) return;
  for (int i = 0; i < FSIO_TRACKED; i++) {
    if (tracked_used[i]) continue;
    memcpy(tracked[i], path, len + 1);
    tracked_used[i] = 1;
    return;
  }
}

void fsio_untrack_temp(const char *path) {
  for (int i = 0; i < FSIO_TRACKED; i++) {
    if (tracked_used[i] && strcmp(tracked[i], path) == 0) {
      tracked_used[i] = 0;
      return;
    }
  }
}

void fsio_unlink_tracked(void) {
  for (int i = 0; i < FSIO_TRACKED; i++)
    if (tracked_used[i]) unlink(tracked[i]);
}
