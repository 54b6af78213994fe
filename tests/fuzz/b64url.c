/* b64url.c: libFuzzer target for base64url decoding (jwt_b64url_decode),
 * checked against the encoder: whatever decodes re-encodes to the input
 * with its padding stripped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *out = malloc(size + 3);
  char *again;
  long n;
  size_t len = size;
  if (!out) return 0;
  n = jwt_b64url_decode((const char *)data, size, out);
  if (n >= 0) {
    while (len > 0 && data[len - 1] == '=') len--;
    again = malloc(4 * (((size_t)n + 2) / 3) + 1);
    if (again) {
      size_t m = jwt_b64url_encode(out, (size_t)n, again);
      /* Trailing bits the encoder would not set are tolerated by decoders;
       * compare all but the last character. */
      if (m != len || (m > 1 && memcmp(again, data, m - 1) != 0)) abort();
      free(again);
    }
  }
  free(out);
  return 0;
}
