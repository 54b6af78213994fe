/* csv.c: libFuzzer target for the CSV reader of the C core (next_row in
 * csrc/lcsv.c): any bytes read whole and read in chunks (their sizes drawn
 * from the first byte) give the same rows, or the same error, and every
 * cell lies inside the row's bytes. */
#include <stdint.h>
#include <stdio.h>

#include "../../csrc/lcsv.c"

/* Reads data through a reader fed `chunk` bytes at a time (0: all at once);
 * returns the rows as one text (cells separated by \1, rows by \2, then the
 * end: \3 or the error), malloc'd. */
static char *read_all(const uint8_t *data, size_t size, size_t chunk, size_t *out_len) {
  reader r;
  memset(&r, 0, sizeof r);
  r.record = 1;
  snprintf(r.where, sizeof r.where, "fuzz.csv");
  size_t fed = 0, len = 0, cap = 256;
  char *out = malloc(cap);
  if (!out) abort();
  for (;;) {
    int rc = next_row(&r);
    if (rc == 0) {
      if (fed == size) {
        r.at_end = 1;
        continue;
      }
      size_t n = chunk && chunk < size - fed ? chunk : size - fed;
      if (reader_append(&r, (const char *)data + fed, n)) abort();
      fed += n;
      continue;
    }
    size_t need = len + 3 + (rc == -2 ? strlen(r.err) : 0);
    for (int i = 0; rc == 1 && i < r.nfields; i++) need += r.cells[i].len + 1;
    if (need > cap) {
      while (cap < need) cap *= 2;
      out = realloc(out, cap);
      if (!out) abort();
    }
    if (rc == 1) {
      for (int i = 0; i < r.nfields; i++) {
        const cell *c = &r.cells[i];
        if (c->len && (c->s < r.out || c->s + c->len > r.out + r.out_len)) abort();
        if (c->present != (c->len > 0)) abort();
        memcpy(out + len, c->s, c->len);
        len += c->len;
        out[len++] = '\1';
      }
      out[len++] = '\2';
      continue;
    }
    if (rc == -2) {
      memcpy(out + len, r.err, strlen(r.err));
      len += strlen(r.err);
    } else {
      out[len++] = '\3';
    }
    break;
  }
  free(r.in);
  free(r.out);
  free(r.ends);
  free(r.cells);
  *out_len = len;
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = (size_t)(data[0] % 17) + 1;
  size_t a_len, b_len;
  char *a = read_all(data + 1, size - 1, 0, &a_len);
  char *b = read_all(data + 1, size - 1, chunk, &b_len);
  if (a_len != b_len || memcmp(a, b, a_len) != 0) abort();
  free(a);
  free(b);
  return 0;
}
