/* digest.h: SHA-256 of bytes and of a file, and random bytes, on OpenSSL.
 * What the state, the downloads and uuids need; the keys and signatures of
 * a JWT are jwt.h's. Each returns 0, or -1 with a sentence in err. */
#ifndef AUDITRUN_DIGEST_H
#define AUDITRUN_DIGEST_H

#include <stddef.h>

int digest_sha256(const unsigned char *data, size_t len, unsigned char out[32]);
/* Reads fd from offset 0 to its end with pread (its offset stays). */
int digest_sha256_fd(int fd, unsigned char out[32], char *err, size_t errlen);
int digest_random(unsigned char *out, size_t len, char *err, size_t errlen);

#endif
