/* digest.c: SHA-256 of bytes and of a file, and random bytes, on OpenSSL.
 * A file is read in 64 KiB preads, so memory stays flat for a report of any
 * size. A failure says what failed and OpenSSL's last reason. */
#include "digest.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* what, then OpenSSL's most recent reason; the error queue is emptied. */
static void fail(char *err, size_t errlen, const char *what) {
  unsigned long e, last = 0;
  char reason[256] = "";
  while ((e = ERR_get_error()) != 0) last = e;
  if (last) ERR_error_string_n(last, reason, sizeof reason);
  snprintf(err, errlen, last ? "%s (%s)" : "%s", what, reason);
}

/* SHA-256 fetched from its provider once: EVP_sha256() would be looked up
 * again (under a lock) at each digest, as long as the digest of a row. */
static const EVP_MD *sha256_md(void) {
  static EVP_MD *md;
  if (!md) md = EVP_MD_fetch(NULL, "SHA256", NULL);
  return md ? md : EVP_sha256();
}

int digest_sha256(const unsigned char *data, size_t len, unsigned char out[32]) {
  return EVP_Digest(data, len, out, NULL, sha256_md(), NULL) == 1 ? 0 : -1;
}

int digest_sha256_fd(int fd, unsigned char out[32], char *err, size_t errlen) {
  int rc = -1;
  unsigned char buf[65536];
  off_t at = 0;
  ssize_t n;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) goto failed;
  while ((n = pread(fd, buf, sizeof buf, at)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      snprintf(err, errlen, "read error: %s", strerror(errno));
      goto done;
    }
    if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) goto failed;
    at += n;
  }
  if (EVP_DigestFinal_ex(md, out, NULL) != 1) goto failed;
  rc = 0;
  goto done;
failed:
  fail(err, errlen, "sha256 failed");
done:
  EVP_MD_CTX_free(md);
  return rc;
}

int digest_random(unsigned char *out, size_t len, char *err, size_t errlen) {
  if (RAND_bytes(out, (int)len) != 1) {
    fail(err, errlen, "random generator failed");
    return -1;
  }
  return 0;
}
