/* key.c: libFuzzer target for loading an app certificate and key from
 * whatever bytes a file holds: PKCS#12, PEM (certificate and key, encrypted
 * or not), garbage. The first byte picks the password. Loading must fail
 * with a message or succeed with both halves, and never prompt. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const passwords[] = {NULL, "", "sandbox-pass", "wrong"};
  char path[64], err[512];
  jwt_key k = {0};
  int fd;
  if (size < 1) return 0;
  fd = memfd_create("fuzz-key", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
    close(fd);
    return 0;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  err[0] = '\0';
  if (jwt_key_load(&k, path, NULL, passwords[data[0] & 3], 1700000000, err, sizeof err) == 0) {
    if (!k.pkey || !k.cert) abort();
  } else if (err[0] == '\0') {
    abort();  /* a failure always says why */
  }
  jwt_key_free(&k);
  close(fd);
  return 0;
}
