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
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
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

int fsio_fsync_file(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "cannot sync %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

int fsio_fsync_dir_of(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  int fd;
  dir_of(path, dir, sizeof dir);
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "cannot sync directory %s: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

int fsio_temp_beside(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  char dir[PATH_MAX];
  const char *base = strrchr(path, '/');
  int fd;
  base = base ? base + 1 : path;
  dir_of(path, dir, sizeof dir);
  /* A dot name so listings and globs of finished files skip it. */
  if ((size_t)snprintf(out, outlen, "%s/.%.64s.part-XXXXXX", dir, base) >= outlen) {
    snprintf(err, errlen, "path too long: %s", path);
    return -1;
  }
  fd = mkostemp(out, O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir, strerror(errno));
    return -1;
  }
  /* mkostemp makes 0600; give the file the mode a plain create would. */
  {
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
      snprintf(err, errlen, "cannot set the mode of %s: %s", out, strerror(errno));
      close(fd);
      unlink(out);
      return -1;
    }
  }
  close(fd);
  return 0;
}

int fsio_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen) {
  char tmp[PATH_MAX];
  int fd = -1, rc = -1;
  size_t off = 0;
  if (fsio_temp_beside(path, tmp, sizeof tmp, err, errlen) != 0) return -1;
  fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) goto fail;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      goto fail;
    }
    off += (size_t)n;
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto fail;
  rc = fsio_fsync_dir_of(path, err, errlen);
  return rc;
fail:
  snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(tmp);
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
  return fsio_fsync_dir_of(to, err, errlen);
}

int fsio_lock(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open the lock file %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    snprintf(err, errlen, busy ? "%s is held by another process" : "cannot lock %s: %s", path, strerror(errno));
    close(fd);
    return busy ? -2 : -1;
  }
  return fd;
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

int fsio_remove_parts(const char *dir, char *err, size_t errlen) {
  int removed = 0, rc = -1;
  char path[PATH_MAX];
  struct dirent *e;
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(err, errlen, "cannot read the directory %s: %s", dir, strerror(errno));
    return -1;
  }
  while ((errno = 0, e = readdir(d)) != NULL) {
    if (!is_part_name(e->d_name)) continue;
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
